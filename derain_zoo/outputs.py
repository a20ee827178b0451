"""Outputs written so that nothing the user owns is lost: the contract ``predict`` and ``synthesize`` share.

An output is written under a hidden temporary name beside its target (``partial_path``) and moved
into place when complete. Checks run on the files themselves, not on the spelling of their paths:
an output is compared with every input by device and inode (``Inputs.check``), so bind mounts,
hard links and case-insensitive names cannot make an input look like another file; and the final
move refuses a target that appeared while the run worked (``rename_no_replace``), so a racing run
fails in one line instead of silently replacing the other's result. A killed run's hidden file is
removed by the next run that writes the same target (``remove_stale_partials``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from derain_zoo.data import video_io


class OutputExistsError(FileExistsError):
    """The output exists (or appeared while the run worked) and ``--overwrite`` was not given."""


class UnsafeOutputError(ValueError):
    """Writing the output would destroy an input, another output of the run or a file the run did not write."""


def partial_path(target: Path) -> Path:
    """Hidden sibling of ``target``, unique per process, that keeps its suffix (OpenCV picks the codec from it)."""
    if video_io.is_video(target):
        return target.with_name(f".{target.stem}.partial-{os.getpid()}{target.suffix}")
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def _partial_pattern(target: Path) -> re.Pattern[str]:
    """The names ``partial_path`` gives ``target`` in any process, the process id captured."""
    if video_io.is_video(target):
        return re.compile(rf"\.{re.escape(target.stem)}\.partial-(\d+){re.escape(target.suffix)}")
    return re.compile(rf"\.{re.escape(target.name)}\.partial-(\d+)")


def output_path(target: str | Path) -> Path:
    """``target`` made absolute with ``..`` and links resolved in its folder, its own name kept.

    ``dir/../dir`` must name ``dir`` itself: renaming onto the unresolved spelling fails once
    ``dir`` is replaced. The last component is not followed, so a link there is seen as a link.
    """
    path = Path(target).expanduser()
    if path.name in ("", ".."):  # "." or "..": the folder itself
        return path.resolve()
    return path.parent.resolve() / path.name


def check_name_length(target: Path) -> None:
    """Refuse a path with a name the file system cannot hold, counting the hidden temporary name too.

    Without this the first ``exists()`` or write failed with ``OSError: [Errno 36] File name too long``.
    """
    folder = next((p for p in target.parents if _exists(p)), Path("/"))
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    new = target.relative_to(folder).parts if target != folder else ()
    names = [(name, name) for name in new] + ([(partial_path(target).name, new[-1])] if new else [])
    for written, asked in names:
        size = len(os.fsencode(written))
        if size > limit:
            shown = asked if len(asked) <= 40 else f"{asked[:20]}...{asked[-12:]}"
            also = "" if written == asked else f" with the hidden name it is first written under ({size} bytes)"
            raise UnsafeOutputError(
                f"output name {shown!r} in {folder} is too long{also}: the file system allows {limit} bytes a name; "
                "choose a shorter --output"
            )


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()
    except OSError:
        return False


def check_target(target: str | Path, overwrite: bool) -> Path:
    """The output path, or an error when it exists and may not be replaced, or is of the wrong kind."""
    target = output_path(target)
    check_name_length(target)
    if target.is_symlink():
        raise UnsafeOutputError(f"output {target} is a symbolic link; pass the path it points to")
    blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UnsafeOutputError(f"output {target}: {blocking} is a file, not a folder; choose another --output")
    # the result is written beside the target (a hidden partial name), frames then moved into a folder target
    folders = [next(p for p in target.parents if p.exists())] + ([target] if target.is_dir() else [])
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UnsafeOutputError(f"output {target}: {folder} is not writable; choose another --output")
    if not target.exists():
        return target
    if not overwrite:
        raise OutputExistsError(f"output {target} already exists; pass --overwrite to replace it")
    if video_io.is_video(target) and target.is_dir():
        raise UnsafeOutputError(f"output {target} is a folder, not a video file; --overwrite replaces only files")
    if not video_io.is_video(target) and not target.is_dir():
        raise UnsafeOutputError(f"output {target} is a file, but frames are written to a folder; choose another name")
    return target


def frame_number(path: Path) -> int:
    """The number of a frame file as write_frames names it (00007.png -> 7), 0 for any other file."""
    match = video_io.FRAME_FILE.fullmatch(path.name)
    return int(match.group(1)) if match and path.is_file() else 0


def check_stale_frames(target: Path, frames: int) -> None:
    """Refuse a frame folder that holds numbered frames beyond the ``frames`` this run writes.

    ``--overwrite`` replaces only the frames the run writes; frames left by an earlier, longer run
    would silently lengthen the result, and deleting them would remove files the run did not write.
    """
    if not target.is_dir():
        return
    stale = sorted(p.name for p in target.iterdir() if frame_number(p) > frames)
    if stale:
        raise UnsafeOutputError(
            f"output folder {target} holds {stale[0]}..{stale[-1]} beyond the {frames} frames this run writes "
            "(from an earlier, longer run?); remove them or choose another --output"
        )


# ---------------------------------------------------------------------------------------------- identity
FileId = tuple[int, int]


def file_id(path: Path) -> FileId | None:
    """(device, inode) of what ``path`` names, links followed; None when it does not exist."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _parent_ids(path: Path) -> set[FileId | None]:
    """Identities of the folders above ``path``, as spelt and with links resolved."""
    return {file_id(p) for p in (*path.absolute().parents, *path.resolve().parents)}


def _replaced_files(target: Path) -> list[Path]:
    """The existing files a run writing ``target`` could replace: the file itself, or the frames of a folder."""
    if target.is_dir():
        return [p for p in target.iterdir() if frame_number(p)]
    return [target] if target.is_file() else []


class Inputs:
    """What a run reads, identified by device and inode once, to check every output target against.

    Files are compared by identity, never by the text of their paths: a bind mount, a hard link or a
    case-insensitive name is the same file under another name, and replacing it loses the input.
    """

    def __init__(self, paths: Iterable[str | Path]) -> None:
        self.paths = [Path(p) for p in paths if file_id(Path(p)) is not None]
        self.ids = {path: file_id(path) for path in self.paths}
        self.parents = {path: _parent_ids(path) for path in self.paths}
        self.files: dict[FileId, Path] = {}  # video files, and the files directly inside input folders (frames)
        for source in self.paths:
            files = [p for p in source.iterdir() if p.is_file()] if source.is_dir() else [source]
            self.files.update({key: path for path in files if (key := file_id(path)) is not None})

    def check(self, target: Path) -> None:
        """Refuse an output that is, contains or lies inside an input, or would replace any input file."""
        above = {key for p in (target, *target.parents) if (key := file_id(p)) is not None}
        target_id = file_id(target)
        for source in self.paths:
            if self.ids[source] == target_id:
                relation = "is"
            elif self.ids[source] in above:
                relation = "lies inside"
            elif target_id is not None and target_id in self.parents[source]:
                relation = "contains"
            else:
                continue
            raise UnsafeOutputError(
                f"output {target} {relation} the input {source}; choose an --output outside the input"
            )
        for path in _replaced_files(target):
            source = self.files.get(file_id(path))  # type: ignore[arg-type]
            if source is not None:
                raise UnsafeOutputError(
                    f"output {path} is the input {source} (the same file under another name: a hard link or a "
                    "mount); choose an --output outside the input"
                )


# ---------------------------------------------------------------------------------------------- moving
RENAME_NOREPLACE = 1
AT_FDCWD = -100


def _renameat2(source: Path, target: Path) -> bool:
    """Linux ``renameat2(RENAME_NOREPLACE)``: True when done, False where the system or file system lacks it."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    if function is None:
        return False
    result = function(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), RENAME_NOREPLACE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


def rename_no_replace(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, raising FileExistsError if ``target`` exists, without a check-then-move gap.

    ``renameat2(RENAME_NOREPLACE)`` where the system has it; else a file is hard-linked and unlinked
    (``link`` never replaces); only a folder on a system with neither is checked, then renamed.
    """
    if _renameat2(source, target):
        return
    if not source.is_dir():
        try:
            os.link(source, target)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: fall through to the checked rename
            pass
        else:
            os.unlink(source)
            return
    if _exists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


def move_frames_into(partial: Path, target: Path) -> None:
    """Move the frames of ``partial`` into the existing folder ``target``, replacing same-named ones only."""
    for frame in sorted(partial.iterdir()):
        os.replace(frame, target / frame.name)
    partial.rmdir()


def appeared(target: Path) -> OutputExistsError:
    """The error of a final move that found its target taken: another run (or the user) wrote it meanwhile."""
    return OutputExistsError(
        f"output {target} appeared while this run worked (another run writing the same output?); it was kept and "
        "this run's result dropped; pass --overwrite to replace it, or choose another --output"
    )


# ---------------------------------------------------------------------------------------------- clean-up
def remove(path: Path) -> None:
    """Delete a file, link or folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def remove_despite_interrupts(path: Path, attempts: int = 5) -> None:
    """``remove(path)``, tried again when an exception breaks in before it is done; then raise the first one.

    A dead DataLoader worker's SIGCHLD handler raises wherever Python happens to be, once per worker that
    exits, so the clean-up after a killed worker can itself be interrupted before it unlinks anything.
    """
    interrupted: Exception | None = None
    for _ in range(attempts):
        try:
            remove(path)
            break
        except Exception as error:  # noqa: BLE001 - re-raised below, once the file is gone
            interrupted = interrupted or error
    if interrupted is not None:
        raise interrupted


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove the hidden files of ``target`` left by killed runs (``kill -9``, power loss), saying so on stderr.

    A partial of a process still alive is another run at work and is left alone.
    """
    pattern = _partial_pattern(target)
    folder = target.parent
    found = [(p, pattern.fullmatch(p.name)) for p in (folder.iterdir() if folder.is_dir() else [])]
    stale = [p for p, match in found if match and int(match[1]) != os.getpid() and not _alive(int(match[1]))]
    for path in stale:
        remove(path)
        print(f"derain-zoo: removed {path}, left unfinished by an interrupted run", file=sys.stderr)
    return stale
