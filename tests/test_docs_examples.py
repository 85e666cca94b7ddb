"""Every command example of README.md and docs/*.md runs, in the order written, as pasted into a shell.

Examples are the lines starting with `twin ` (or `$ twin `) in the fenced blocks a shell would take: ```bash, ```sh,
```shell, ```console and plain ``` blocks; `\\` continuations and quoted strings spanning lines are joined, `&&`
separates commands, `export NAME=VALUE` lines set the environment of the lines after them. bash itself turns each
line into its arguments (quoting, `$VARIABLES`, comments), which then go to the real CLI (Typer's CliRunner), in
a fresh directory per document holding a copy of the repository's scenarios. Every command must exit 0.

`twin plant serve` starts a real server in the background (stopped with Ctrl-C at the next `serve` or at the end of
the document). A line marked `# needs a running server` runs against it when one was started above it; before
that, the test checks that the line parses: the command exists, `--help` works, every option is known and
every value has the right type. Four things differ from a user's terminal, to keep the test short and
independent of the machine: scenario horizons are a week instead of a month, the OPC UA port is a free one instead
of 4840, `twin mirror --duration` is at most 4 s, and a `--speed` is kept as written.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, TWIN
from typer.testing import CliRunner

from twin.cli import app

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
NEEDS_SERVER = "needs a running server"
MIRROR_MAX_S = 4.0
WEEK_H = 168

pytestmark = pytest.mark.timeout(900)


@dataclass
class Example:
    doc: str
    line: int  # first line in the document
    text: str  # as written, continuation lines included

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def needs_server(self) -> bool:
        return NEEDS_SERVER in self.comment

    @property
    def comment(self) -> str:
        """The shell comment ending the example (shlex drops it; a `#` inside quotes is not one)."""
        lexer = shlex.shlex(self.text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        tokens = list(lexer)
        hashes = [i for i, t in enumerate(tokens) if t.startswith("#")]
        return " ".join(tokens[hashes[0] :]) if hashes else ""


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # No closing quotation: the string goes on on the next line
        return False
    return True


def examples(path: Path) -> list[Example]:
    """The `twin ...` and `export ...` lines of the shell blocks of one document, in order."""
    text = path.read_text(encoding="utf-8")
    out: list[Example] = []
    for m in re.finditer(r"^```([^\n`]*)\n(.*?)^```", text, flags=re.S | re.M):
        if m.group(1).strip().split(" ")[0].lower() not in SHELL_FENCES:
            continue
        first = text[: m.start(2)].count("\n") + 1
        lines = m.group(2).splitlines()
        i = 0
        while i < len(lines):
            line = lines[i].removeprefix("$ ")
            start = i
            i += 1
            if not line.startswith(("twin ", "export ")):
                continue
            while not _complete(line) and i < len(lines):
                line += "\n" + lines[i]
                i += 1
            for part in re.split(r" && (?=twin )", line):
                out.append(Example(path.relative_to(REPO).as_posix(), first + start, part))
    return out


# -- running ---------------------------------------------------------------------------------------------------
def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=30
    )


def argv_of(ex: Example, setup: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """The arguments bash gives `twin` for this line (after the `export` lines before it)."""
    out = cwd / ".argv"
    body = ex.text[len("twin ") :]
    script = "\n".join(
        [*setup, f"__twin() {{ printf '%s\\0' \"$@\" > {shlex.quote(str(out))}; }}", f"__twin {body}"]
    )
    r = _bash(script, cwd, env)
    assert r.returncode == 0, f"{ex.where}: bash cannot run the line: {r.stderr}"
    argv = out.read_bytes().decode().split("\0")[:-1]
    out.unlink()
    return argv


def environment_of(setup: list[str], cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """The variables the `export` lines set, as bash sees them."""
    r = _bash("\n".join([*setup, "env -0"]), cwd, env)
    assert r.returncode == 0, r.stderr
    pairs = (item.split("=", 1) for item in r.stdout.split("\0") if "=" in item)
    return {k: v for k, v in pairs if env.get(k) != v and k not in ("PWD", "SHLVL", "_", "OLDPWD")}


def redirect_target(ex: Example) -> str | None:
    tokens = shlex.split(ex.text, comments=True)
    return tokens[tokens.index(">") + 1] if ">" in tokens else None


def check_parses(ex: Example, argv: list[str]) -> None:
    """The command exists, its --help works, its options and arguments parse with the right types."""
    import typer.main

    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("twin", list(argv))
    path: list[str] = []
    while hasattr(cmd, "resolve_command"):
        rest = [*(getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", [])), *ctx.args]
        name, cmd, rest = cmd.resolve_command(ctx, rest)
        path.append(name)
        ctx = cmd.make_context(name, rest, parent=ctx)
    r = CliRunner().invoke(app, [*path, "--help"])
    assert r.exit_code == 0 and "Usage" in r.stdout, f"{ex.where}: twin {' '.join(path)} --help failed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `twin plant serve` line running in the background, as in a second terminal."""

    def __init__(self, ex: Example, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.ex = ex
        self.proc = subprocess.Popen([*TWIN, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        timer = threading.Timer(90, self.proc.kill)
        timer.start()
        try:
            first = self.proc.stderr.readline()
        finally:
            timer.cancel()
        assert first.startswith("serving "), (
            f"{ex.where}: the server did not start: {first}{self.proc.stderr.read()}"
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0 and "server stopped" in err, f"{self.ex.where}: {err}"


def prepare(tmp: Path) -> None:
    """The repository's scenarios, with a week as the horizon instead of a month."""
    shutil.copytree(REPO / "scenarios", tmp / "scenarios")
    base = tmp / "scenarios" / "baseline.yaml"
    text = base.read_text()
    assert "horizon_h: 720" in text
    base.write_text(
        text.replace("horizon_h: 720", f"horizon_h: {WEEK_H}").replace("warmup_h: 48", "warmup_h: 24")
    )


def run_document(doc: Path, tmp: Path) -> list[str]:
    """Run every example of `doc` in order in `tmp`; returns what was done with each, for the assertions."""
    prepare(tmp)
    base_env = dict(os.environ, COLUMNS="200", NO_COLOR="1", PYTHONPATH=str(REPO))
    port = free_port()
    setup: list[str] = []
    exported: dict[str, str] = {}
    server: Server | None = None
    done: list[str] = []
    try:
        for ex in examples(doc):
            if ex.text.startswith("export "):
                setup.append(ex.text)
                exported = environment_of(setup, tmp, base_env)
                continue
            argv = [
                a.replace("127.0.0.1:4840", f"127.0.0.1:{port}") for a in argv_of(ex, setup, tmp, base_env)
            ]
            if argv[:2] == ["plant", "serve"]:
                if "--endpoint" not in argv:
                    argv += ["--endpoint", f"opc.tcp://127.0.0.1:{port}"]
                if server is not None:
                    server.stop()
                server = Server(ex, argv, tmp, {**base_env, **exported})
                done.append(f"served {ex.where}")
                continue
            if ex.needs_server and server is None:
                check_parses(ex, argv)
                done.append(f"parsed {ex.where}")
                continue
            if argv[0] == "mirror" and "--duration" in argv:
                i = argv.index("--duration") + 1
                argv[i] = str(min(float(argv[i]), MIRROR_MAX_S))
            r = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", **exported}).invoke(app, argv)
            assert r.exit_code == 0, f"{ex.where}: `{ex.text}` exited {r.exit_code}:\n{r.stderr}\n{r.stdout}"
            if argv[0] == "sql" and "--output" not in argv:
                assert not r.stderr.startswith("0 rows"), f"{ex.where}: the query found nothing"
            target = redirect_target(ex)
            if target:
                (tmp / target).write_text(r.stdout)
            done.append(f"ran {ex.where}")
    finally:
        if server is not None:
            server.stop()
    return done


# -- the tests -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "doc", [d for d in DOCS if examples(d)], ids=lambda d: d.relative_to(REPO).as_posix()
)
def test_examples_run_in_the_order_written(doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = run_document(doc, tmp_path)
    assert done and all(d.startswith(("ran", "parsed", "served")) for d in done)
    if doc.name == "README.md":
        assert (tmp_path / "export" / "run-1" / "lots.parquet").exists()
        assert (tmp_path / "study.html").read_text().startswith("<!DOCTYPE html>")
        assert "writable: true" in (tmp_path / "plant.yaml").read_text()


def test_the_examples_found_are_the_documented_ones():
    """The parser sees what a reader sees: continuation lines joined, quoted SQL over several lines kept whole,
    marks read from comments, only shell blocks."""
    readme = examples(REPO / "README.md")
    texts = [e.text for e in readme]
    assert texts[0] == "twin run scenarios/baseline.yaml"
    assert sum(t.startswith('twin sql "SELECT b.setpoint_c') and t.count("\n") == 2 for t in texts) == 1
    serve = [
        e for e in readme if e.text.startswith("twin plant serve") and "--security SignAndEncrypt" in e.text
    ]
    assert len(serve) == 1 and serve[0].text.endswith("--trust-dir pki/trusted --allow-writes")
    marked = [e.text.split()[1] for e in readme if e.needs_server]
    assert marked[:4] == ["tagmap", "tagmap", "mirror", "forecast"]
    assert not any(e.needs_server for e in readme if e.text.startswith("twin sql"))
    assert all(e.text.startswith(("twin ", "export ")) for d in DOCS for e in examples(d))
    assert Example("x", 1, "twin sql \"SELECT '#' AS c\" # needs a running server").needs_server
    assert not Example("x", 1, "twin sql \"SELECT '# needs a running server' AS c\"").needs_server


def test_sql_examples_paste_as_they_are():
    """No SQL example starts with `--` (a comment Typer would take for an option) and every one is a `twin sql`
    line, not a bare SQL block."""
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        assert not re.search(r"^```sql", text, flags=re.M), (
            f"{doc.name}: a bare SQL block does not paste into a shell"
        )
        for ex in examples(doc):
            args = shlex.split(ex.text, comments=True)
            if args[:2] == ["twin", "sql"]:
                assert not args[2].lstrip().startswith("--"), ex.where


def test_readme_python_api_runs(tmp_path, monkeypatch):
    import twin

    prepare(tmp_path)
    monkeypatch.chdir(tmp_path)
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert blocks
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), namespace)  # runs the baseline into twin.duckdb
    assert namespace["result"].run_id == 1 and len(namespace["runs"]) == 1
    assert 0 < namespace["yield_by_setpoint"]["final_yield"].iloc[0] <= 1
    assert twin.query("SELECT count(*) AS n FROM runs", db="twin.duckdb").column("n")[0].as_py() == 1
