"""Replay the Dockerfile on this machine, which has no Docker engine.

`Dockerfile.parse` reads the stages with dockerfile-parse. `replay` builds the image's
filesystem under a temporary root: the build context is what `.dockerignore` lets through,
COPY copies from it, RUN runs the file's own command (bind mounts copied in, the uv cache
mount is this machine's uv cache), and the runtime stage starts from an empty root holding
only what it copies from the build stage. Image paths map to `root / path`; anything else
(the base image: Python, /bin/sh) is this machine's.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser
from packaging.markers import Marker
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent


def _world_reachable(path: Path) -> bool:
    """Whether any user, the image's included, can run `path` (every parent searchable)."""
    path = path.resolve()
    return path.is_file() and all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def _base_python_dir() -> str:
    """The stand-in for the base image's Python: this machine's, one the app user can run."""
    candidates = [
        Path(sys._base_executable),
        Path("/usr/local/bin/python3"),
        Path("/usr/bin/python3"),
    ]
    reachable = [c for c in candidates if _world_reachable(c)]
    return str((reachable or candidates)[0].parent)


# The base image's own environment (python:*-slim sets these); PATH is this machine's.
BASE_ENV = {"PATH": os.pathsep.join([_base_python_dir(), "/usr/bin", "/bin"]), "LANG": "C.UTF-8"}


@dataclass
class Instruction:
    name: str
    value: str

    def flags_and_args(self) -> tuple[dict[str, list[str]], list[str]]:
        """`--mount=a --mount=b --from=x rest...` as ({mount: [a, b], from: [x]}, rest)."""
        words = shlex.split(self.value)
        flags: dict[str, list[str]] = {}
        while words and words[0].startswith("--"):
            key, _, value = words.pop(0)[2:].partition("=")
            flags.setdefault(key, []).append(value)
        return flags, words

    def exec_form(self) -> list[str]:
        argv = json.loads(self.value)
        assert isinstance(argv, list), f"{self.name} is not in exec form: {self.value}"
        return [str(arg) for arg in argv]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]

    def one(self, name: str) -> Instruction:
        (found,) = self.all(name)
        return found

    def env(self, start: dict[str, str] | None = None) -> dict[str, str]:
        """The stage's ENV applied in order, `$VAR`/`${VAR}` expanded as Docker does."""
        env = dict(start if start is not None else BASE_ENV)
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.value):
                key, _, value = word.partition("=")
                env[key] = _expand(value, env)
        return env


def _expand(value: str, env: dict[str, str]) -> str:
    for key, known in env.items():
        value = value.replace(f"${{{key}}}", known).replace(f"${key}", known)
    return value


@dataclass
class Dockerfile:
    stages: list[Stage]

    @classmethod
    def parse(cls, path: Path = REPO / "Dockerfile") -> "Dockerfile":
        stages: list[Stage] = []
        for item in DockerfileParser(path=str(path)).structure:
            name, value = item["instruction"], item["value"]
            if name == "FROM":
                words = value.split()
                stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
                stages.append(Stage(words[0], stage_name))
            elif name != "COMMENT":
                stages[-1].instructions.append(Instruction(name, value))
        return cls(stages)

    @property
    def runtime(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def uv_tag(self) -> str:
        for stage in self.stages:
            for copy in stage.all("COPY"):
                image = copy.flags_and_args()[0].get("from", [""])[0]
                if image.startswith("ghcr.io/astral-sh/uv:"):
                    return image.split(":", 1)[1]
        raise AssertionError("the Dockerfile does not copy uv from ghcr.io/astral-sh/uv")


def dockerignore_patterns(repo: Path = REPO) -> list[str]:
    lines = (repo / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def build_context(repo: Path, into: Path) -> Path:
    """What `docker build` sends: the files `.dockerignore` lets through."""
    for relative in sorted(exclude_paths(str(repo), dockerignore_patterns(repo))):
        source = repo / relative
        if source.is_file():
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


class Root:
    """An image filesystem under a host directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __truediv__(self, image_path: str) -> Path:
        return self.path / image_path.lstrip("/")

    def map_env(self, env: dict[str, str]) -> dict[str, str]:
        """Point image paths (those under a top-level directory this root holds) at it."""
        owned = {p.name for p in self.path.iterdir()}

        def one(value: str) -> str:
            if value.startswith("/") and value.split("/")[1] in owned:
                return str(self / value)
            return value

        return {k: os.pathsep.join(one(v) for v in val.split(os.pathsep)) for k, val in env.items()}


@dataclass
class Image:
    """The replayed runtime stage: its root, environment and commands, ready to start."""

    dockerfile: Dockerfile
    root: Root

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.root.map_env(self.dockerfile.runtime.env()), **extra}

    def argv(self, *words: str) -> list[str]:
        """Resolve argv[0] on the image's PATH, as the container runtime does."""
        path = self.env()["PATH"]
        found = shutil.which(words[0], path=path)
        assert found, f"{words[0]} is not on the image's PATH ({path})"
        return [found, *words[1:]]

    @property
    def command(self) -> list[str]:
        runtime = self.dockerfile.runtime
        return self.argv(*runtime.one("ENTRYPOINT").exec_form(), *runtime.one("CMD").exec_form())

    @property
    def healthcheck(self) -> list[str]:
        value = self.dockerfile.runtime.one("HEALTHCHECK").value
        argv = json.loads(value[value.index("CMD") + 3 :])
        return self.argv(*argv)

    @property
    def venv(self) -> Path:
        return self.root / self.dockerfile.stage("build").env()["UV_PROJECT_ENVIRONMENT"]

    def python(self, code: str) -> str:
        """Run code with the image's interpreter, isolated from this machine's site."""
        argv = [str(self.venv / "bin" / "python"), "-I", "-c", code]
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def replay(dockerfile: Dockerfile, workdir: Path, uv: Path) -> Image:
    """Build the image's filesystem under `workdir / "root"` by replaying the Dockerfile."""
    context = build_context(REPO, workdir / "context")
    # Both stages live at the same host path, as both are at / in Docker: the venv's
    # absolute paths (script shebangs) written in the build stage stay right at run time.
    root = Root(workdir / "root")
    root.path.mkdir()
    _replay_build(dockerfile.stage("build"), root, context, uv, workdir / "bin")
    build_stage = root.path.rename(workdir / "build-stage")
    root.path.mkdir()
    for copy in dockerfile.runtime.all("COPY"):
        flags, (source, target) = copy.flags_and_args()
        assert flags.get("from") == ["build"], f"runtime COPY not from the build stage: {copy}"
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(Root(build_stage) / source, root / target, symlinks=True)
    for workdir_instruction in dockerfile.runtime.all("WORKDIR"):
        (root / workdir_instruction.value).mkdir(parents=True, exist_ok=True)
    # The build stage is not in the image; nor is it here once the runtime stage is built.
    shutil.rmtree(build_stage)
    return Image(dockerfile, root)


def _replay_build(stage: Stage, root: Root, context: Path, uv: Path, tools: Path) -> None:
    env: dict[str, str] = dict(BASE_ENV)
    cwd = "/"
    for instruction in stage.instructions:
        if instruction.name == "ENV":
            env = Stage(stage.base, None, [instruction]).env(env)
        elif instruction.name == "WORKDIR":
            cwd = instruction.value
            (root / cwd).mkdir(parents=True, exist_ok=True)
        elif instruction.name == "COPY":
            flags, words = instruction.flags_and_args()
            if "from" in flags:
                _provide_tool(flags["from"][0], words, uv, tools)
                env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
            else:
                _copy(context, words[:-1], root / cwd, words[-1])
        elif instruction.name == "RUN":
            _run(instruction, root, cwd, env, context)
        else:
            raise AssertionError(f"the replay does not know {instruction.name} in the build stage")


def _provide_tool(image: str, words: list[str], uv: Path, tools: Path) -> None:
    # The only outside image is uv's; this machine's uv stands in for it (same version).
    assert image.startswith("ghcr.io/astral-sh/uv:") and words == ["/uv", "/bin/uv"], image
    tools.mkdir(exist_ok=True)
    (tools / "uv").symlink_to(uv)


def _copy(context: Path, sources: list[str], cwd: Path, target: str) -> None:
    """Docker's COPY: a directory's contents, or files; into a directory if `target/`."""
    destination = cwd / target
    into_dir = len(sources) > 1 or target.endswith("/")
    for source in sources:
        path = context / source
        assert path.exists(), f"COPY {source}: not in the build context (.dockerignore?)"
        if path.is_dir():
            shutil.copytree(path, destination, dirs_exist_ok=True)
        else:
            destination.mkdir(parents=True, exist_ok=True) if into_dir else None
            shutil.copy2(path, destination / path.name if into_dir else destination)


def _run(
    instruction: Instruction, root: Root, cwd: str, env: dict[str, str], context: Path
) -> None:
    flags, _ = instruction.flags_and_args()
    mounted: list[Path] = []
    for mount in flags.get("mount", []):
        options = dict(part.partition("=")[::2] for part in mount.split(","))
        if options["type"] == "cache":
            # uv's cache for root; here it is this machine's uv cache (already warm).
            assert options["target"] == "/root/.cache/uv", mount
        else:
            assert options["type"] == "bind", mount
            target = root / cwd / options["target"]
            assert not target.exists(), f"bind mount would hide {target}"
            shutil.copy2(context / options["source"], target)
            mounted.append(target)
    command = _shell_command(instruction.value)
    run_env = {**root.map_env(env), **_build_machine_network()}
    try:
        subprocess.run(["/bin/sh", "-c", command], cwd=root / cwd, env=run_env, check=True)
    finally:
        for target in mounted:  # bind mounts leave nothing behind
            target.unlink()


def _build_machine_network() -> dict[str, str]:
    """What the machine running `docker build` lends its builds: HOME (for uv's cache, as
    the cache mount), CA certificates and proxies."""
    names = {"HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"}
    return {
        key: value
        for key, value in os.environ.items()
        if key in names or key.lower() in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    }


def _shell_command(value: str) -> str:
    """The RUN line without its leading --flags, as the shell sees it."""
    rest = value.lstrip()
    while rest.startswith("--"):
        rest = rest.split(None, 1)[1].lstrip()
    return rest


# ---- the lock, read independently of uv


def read_lock(repo: Path = REPO) -> dict[str, dict[str, Any]]:
    with (repo / "uv.lock").open("rb") as f:
        return {p["name"]: p for p in tomllib.load(f)["package"]}


def runtime_closure(
    lock: dict[str, dict[str, Any]], environment: dict[str, str] | None = None
) -> dict[str, str]:
    """name -> version of everything `bookshelf` needs at run time (no dependency groups)."""
    found: dict[str, str] = {}

    def visit(dependencies: list[dict[str, Any]]) -> None:
        for dep in dependencies:
            if "marker" in dep and not Marker(dep["marker"]).evaluate(environment):
                continue
            package = lock[dep["name"]]
            extras = [e for extra in dep.get("extra", []) for e in _optional(package, extra)]
            if dep["name"] not in found:
                found[dep["name"]] = package["version"]
                visit(package.get("dependencies", []))
            visit(extras)

    visit([{"name": "bookshelf"}])
    return found


def _optional(package: dict[str, Any], extra: str) -> list[dict[str, Any]]:
    return list(package.get("optional-dependencies", {}).get(extra, []))


def group_members(lock: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    groups = lock["bookshelf"].get("dev-dependencies", {})
    return {group: {dep["name"] for dep in deps} for group, deps in groups.items()}


def installed(image: Image) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    names = json.loads(image.python(code))
    return {canonicalize_name(name): version for name, version in names.items()}


def temporary_world_readable_dir() -> Iterator[Path]:
    """A temp dir the image's non-root user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="bookshelf-image-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
