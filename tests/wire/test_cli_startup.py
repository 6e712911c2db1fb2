"""The CLI's start-up path stays light: no Trio, no attrs, only the command it runs."""

import subprocess
import sys


def imported_by(*args: str) -> set[str]:
    code = ("import sys; sys.argv = ['dockyard', *sys.argv[1:]]; import cli.main as m\n"
            "try:\n    m.build_parser(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('\\n'.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_version_imports_no_trio_no_attrs_and_no_other_commands():
    mods = imported_by("--namespace", "x", "version")
    assert "trio" not in mods and "attrs" not in mods and "attr" not in mods
    assert "cli.commands.version" in mods
    assert "cli.commands.namespaces" not in mods


def test_unknown_word_falls_back_to_all_commands():
    mods = imported_by("--help")
    assert {"cli.commands.version", "cli.commands.namespaces", "cli.commands.events"} <= mods
    assert "trio" not in mods


def test_task_commands_import_nothing_they_do_not_use():
    # each of these cost 1-5 ms per command: typing, secrets (hmac, hashlib, random), json,
    # shutil (bz2, lzma; argparse asks it for the terminal width: cli.main.Parser does not)
    mods = imported_by("tasks", "kill", "-s", "SIGKILL", "c1")
    assert "cli.commands.tasks" in mods
    assert not {"typing", "secrets", "shutil", "json", "attrs", "trio"} & mods


def test_help_is_as_wide_as_columns_says():
    env = {"COLUMNS": "50", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "cli.main", "tasks", "kill", "--help"], capture_output=True,
                         text=True, check=True, env=env).stdout
    assert max(len(line) for line in out.splitlines()) <= 48
    assert "--signal" in out


def test_run_builds_its_spec_without_heavy_imports():
    out = subprocess.run([sys.executable, "-c", "import sys, cli.commands.run, oci.spec; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert not {"dataclasses", "typing", "attrs", "attr", "inspect", "trio"} & set(out)
