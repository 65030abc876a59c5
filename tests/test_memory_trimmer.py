"""The daemon's trimmer (gateway/memory.py): gives memory back after work, and sleeps on an
event otherwise."""

from __future__ import annotations

import threading

from gateway.memory import Trimmer


def test_work_is_followed_by_one_trim_and_stop_ends_the_thread() -> None:
    trimmer = Trimmer(delay=0.01)
    trimmer.start()
    try:
        assert trimmer.trims == 0  # no work yet: nothing done
        trimmer.touch()
        trimmer.touch()  # work close together asks for one trim
        done = threading.Event()

        def watch() -> None:
            while trimmer.trims == 0:
                if done.wait(0.005):
                    return
            done.set()

        threading.Thread(target=watch, daemon=True).start()
        assert done.wait(5), "no trim after work"
    finally:
        trimmer.stop()
    assert trimmer._thread is not None and not trimmer._thread.is_alive()


def _package(tmp_path, name: str) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text('"""A package with a docstring."""\n')
    return str(folder / "__init__.py")


def test_optimized_code_is_used_only_where_its_compiled_files_are(tmp_path, monkeypatch) -> None:
    """-OO's compiled files present: ready. Absent and not to be written (a read-only install,
    or PYTHONDONTWRITEBYTECODE): not ready, else every start would compile everything."""
    import importlib.util
    import py_compile
    import sys

    from gateway.memory import optimized_code_ready

    source = _package(tmp_path, "gw_opt_probe")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert not optimized_code_ready(("gw_opt_probe",))
    assert not optimized_code_ready(("no_such_module_here",))
    py_compile.compile(
        source, cfile=importlib.util.cache_from_source(source, optimization="2"), optimize=2
    )
    assert optimized_code_ready(("gw_opt_probe",))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    other = _package(tmp_path, "gw_opt_probe2")
    assert other and optimized_code_ready(("gw_opt_probe2",))  # it may write them
