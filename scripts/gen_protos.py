"""Regenerate the Python gRPC stubs from the .proto contract — the one command for it.

    uv run python scripts/gen_protos.py           # (re)write stubs/
    uv run python scripts/gen_protos.py --check   # exit 1 and list stale files (CI)

Reads every `.proto` under `proto/` except `proto/third_party/`, in sorted order, and writes into the
Python package `stubs/`:

- `<pkg>/v1/<name>_pb2.py` (messages) and `<name>_pb2.pyi` (mypy-protobuf types);
- `<name>_pb2_grpc.py` / `.pyi` (service stubs), only for files that declare a service;
- `buf/validate/validate_pb2.py`, the protovalidate rule options our protos use, compiled from the copy
  vendored in `proto/third_party/protovalidate/` (see its README);
- `__init__.py` files, so `from stubs.users.v1 import users_pb2, users_pb2_grpc` works;
- `portico.binpb`, a FileDescriptorSet with imports and source info (comments), from which the
  gateway can load its routes offline.

protoc writes absolute imports such as `from users.v1 import users_pb2`; they are rewritten to
`from stubs.users.v1 import users_pb2` for our own packages (google.* is left alone). The vendored
copies of google/api/{annotations,http}.proto that buf uses are refreshed from (and checked
against) the installed googleapis-common-protos, which is what protoc compiles with.

Output depends only on the inputs and the locked tool versions, so regenerating gives
byte-identical files.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
THIRD_PARTY = PROTO_ROOT / "third_party"
VENDORED_GOOGLEAPIS = THIRD_PARTY / "googleapis"
VENDORED_FILES = ("google/api/annotations.proto", "google/api/http.proto")
# Compiled into stubs/ with our own files: no Python package ships it as google.protobuf code.
PROTOVALIDATE = THIRD_PARTY / "protovalidate"
PROTOVALIDATE_FILES = ("buf/validate/validate.proto",)
STUBS = ROOT / "stubs"
DESCRIPTOR_SET = "portico.binpb"

STUBS_INIT = '"""Generated Python stubs of the proto/ contract: do not edit, run scripts/gen_protos.py."""\n'


def proto_files() -> list[str]:
    """Our .proto files, relative to proto/, sorted."""
    return sorted(
        p.relative_to(PROTO_ROOT).as_posix()
        for p in PROTO_ROOT.rglob("*.proto")
        if THIRD_PARTY not in p.parents
    )


def googleapis_include() -> Path:
    """The site-packages directory holding googleapis-common-protos' google/api/*.proto."""
    from google.api import annotations_pb2

    include = Path(annotations_pb2.__file__).resolve().parents[2]
    if not (include / "google/api/annotations.proto").is_file():
        sys.exit(f"gen_protos: google/api/annotations.proto not found under {include}")
    return include


def grpc_tools_include() -> Path:
    """grpc_tools' bundled well-known types (google/protobuf/*.proto)."""
    import grpc_tools

    return Path(grpc_tools.__file__).resolve().parent / "_proto"


def plugin(name: str) -> Path:
    """A protoc plugin installed next to this interpreter (mypy-protobuf's entry points)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        sys.exit(f"gen_protos: {name} not found next to {sys.executable}; run `uv sync`")
    return Path(found)


def run_protoc(files: list[str], out: Path) -> None:
    """Compile `files` into `out` with grpc_tools' protoc, the python, grpc and mypy plugins."""
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={PROTOVALIDATE}",
        f"--proto_path={googleapis_include()}",
        f"--proto_path={grpc_tools_include()}",
        f"--plugin=protoc-gen-mypy={plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--mypy_grpc_out=quiet:{out}",
        f"--descriptor_set_out={out / DESCRIPTOR_SET}",
        "--include_imports",
        "--include_source_info",
        *files,
    ]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"gen_protos: protoc failed\n{result.stdout}{result.stderr}")


def files_with_services(descriptor_set: Path, files: list[str]) -> set[str]:
    """Those of `files` that declare at least one service."""
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    return {f.name for f in fds.file if f.name in files and f.service}


def own_packages() -> tuple[str, ...]:
    """The top-level packages of our stubs: the first folder of every .proto of ours (so a new package
    needs no change here), and the vendored protovalidate's `buf`."""
    return tuple(sorted({"buf", *(name.split("/", 1)[0] for name in proto_files())}))


def rewrite_imports(path: Path) -> None:
    """`from users.v1 import x` → `from stubs.users.v1 import x`, for our own packages only."""
    own = "|".join(map(re.escape, own_packages()))
    text = path.read_text(encoding="utf-8")
    if re.search(rf"^\s*import (?:{own})\.", text, re.MULTILINE):
        sys.exit(f"gen_protos: unexpected `import <own package>.` form in {path}; extend rewrite_imports")
    from_import = re.compile(rf"^(\s*)from ((?:{own})(?:\.\w+)*) import ", re.MULTILINE)
    path.write_text(from_import.sub(r"\1from stubs.\2 import ", text), encoding="utf-8")


def generate(out: Path) -> None:
    """Write the complete contents of stubs/ into the empty directory `out`."""
    files = proto_files()
    if not files:
        sys.exit(f"gen_protos: no .proto files under {PROTO_ROOT}")
    compiled = [*PROTOVALIDATE_FILES, *files]
    run_protoc(compiled, out)

    with_services = files_with_services(out / DESCRIPTOR_SET, compiled)
    for name in compiled:
        if name not in with_services:  # the grpc plugins emit an empty module even then
            stem = name.removesuffix(".proto")
            for suffix in ("_pb2_grpc.py", "_pb2_grpc.pyi"):
                (out / f"{stem}{suffix}").unlink(missing_ok=True)

    for path in sorted(out.rglob("*.py*")):
        rewrite_imports(path)

    (out / "__init__.py").write_text(STUBS_INIT, encoding="utf-8")
    for directory in sorted(p for p in out.rglob("*") if p.is_dir()):
        (directory / "__init__.py").touch()


def tree(directory: Path) -> set[str]:
    """Relative paths of the files under `directory`, bytecode caches excepted."""
    if not directory.is_dir():
        return set()
    return {
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def differences(expected: Path, actual: Path) -> list[str]:
    """Files of `actual` that are missing, different or extra compared with `expected`."""
    want, have = tree(expected), tree(actual)
    return [
        name
        for name in sorted(want | have)
        if name not in want
        or name not in have
        or not filecmp.cmp(expected / name, actual / name, shallow=False)
    ]


def sync(source: Path, target: Path) -> list[str]:
    """Make `target` hold exactly the files of `source`; touch only what differs."""
    changed = differences(source, target)
    for name in changed:
        src, dst = source / name, target / name
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        else:
            dst.unlink()
    for directory in sorted((p for p in target.rglob("*") if p.is_dir()), reverse=True):
        if directory.name != "__pycache__" and not any(directory.iterdir()):
            directory.rmdir()
    return changed


def vendored_sources(out: Path) -> None:
    """Copy the installed google/api protos that proto/third_party/googleapis must mirror to `out`."""
    include = googleapis_include()
    for name in VENDORED_FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(include / name, out / name)


def vendored_differences(fresh: Path) -> list[str]:
    """Vendored google/api files that differ from the installed ones."""
    return [
        (VENDORED_GOOGLEAPIS / name).relative_to(ROOT).as_posix()
        for name in VENDORED_FILES
        if not (VENDORED_GOOGLEAPIS / name).is_file()
        or not filecmp.cmp(fresh / name, VENDORED_GOOGLEAPIS / name, shallow=False)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary directory and exit 1 if stubs/ (or the vendored google/api "
        "protos) differ from it",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gen_protos-") as tmp:
        fresh, googleapis = Path(tmp) / "stubs", Path(tmp) / "googleapis"
        fresh.mkdir()
        generate(fresh)
        vendored_sources(googleapis)

        if args.check:
            stale = [f"stubs/{name}" for name in differences(fresh, STUBS)]
            stale += vendored_differences(googleapis)
            if stale:
                print("gen_protos: stale generated files (run `uv run python scripts/gen_protos.py`):")
                print("\n".join(f"  {name}" for name in stale))
                return 1
            print(f"gen_protos: stubs/ is up to date ({len(tree(fresh))} files)")
            return 0

        changed = [f"stubs/{name}" for name in sync(fresh, STUBS)]
        for vendored in vendored_differences(googleapis):
            name = (ROOT / vendored).relative_to(VENDORED_GOOGLEAPIS).as_posix()
            (VENDORED_GOOGLEAPIS / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(googleapis / name, VENDORED_GOOGLEAPIS / name)
            changed.append(vendored)
    print(f"gen_protos: {len(changed)} file(s) updated" + "".join(f"\n  {name}" for name in changed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
