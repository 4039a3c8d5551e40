"""Your own images as a dataset: ``folder:`` and ``npz:`` specs, decoded into memory.

A dataset spec is a string, so that it fits ``config.dataset`` (and a resumed
run's saved config) like a TFDS name:

``folder:/path/to/images`` and ``folder:/path?resize=HxW``
  Every image file PIL reads (PNG, JPEG, BMP, GIF, TIFF, WebP, ...: chosen by
  extension, any case; hidden files and folders and other files are skipped).
  Splits: if the folder has a ``train/``, ``validation/`` or ``test/``
  sub-folder, those are the splits (each read recursively; ``train/`` and
  ``test/`` required, ``validation/`` optional, anything else ignored).
  Otherwise every image file under the folder (recursively) goes to a split by
  ``hash_split`` of its path relative to the folder (posix ``/``). Within a
  split, images are in the order of their sorted relative paths.
  Channels: if every image is grayscale (PIL modes ``1``, ``L``, ``LA``, or a
  palette of grays) the images have C=1; if any has colour, all are converted
  to RGB, C=3. Alpha is dropped (not composited); an animated image gives its
  first frame; images of more than 8 bits per channel (modes ``I;16``, ``I``,
  ``F``) are refused. All images must have one size, unless the spec names
  ``resize=HxW`` (height x width), which resizes every image to it with PIL's
  LANCZOS filter. 256 levels; no labels (``label == -1``, ``num_classes == 0``).

``npz:/path/file.npz`` or ``npz:/path/file.npy``
  An ``.npz`` with a uint8 array ``images`` [N, H, W] or [N, H, W, C] (C is 1
  or 3) and an optional integer array ``labels`` [N] of values >= 0
  (``num_classes = max + 1``), or an ``.npy`` holding the images alone.
  Example ``i`` goes to split ``hash_split(str(i))``; a split keeps the index
  order. Levels: 2 when every value is 0 or 1 (binary data, kept as it is),
  otherwise 256 (so that 0/1 data is not quantised to all zeros).
  ``from_array`` writes an in-memory array as such a file.

The hash split does not depend on any seed: the first 8 bytes of the SHA-256
of the name (UTF-8), as a big-endian integer, modulo 10: 0 is ``test``, 1 is
``validation``, 2-9 are ``train`` (about 10/10/80%). Adding or removing a file
moves no other file between splits. ``train`` and ``test`` must get at least
one image; a ``validation`` split that gets none is left out (evaluation during
training then uses ``test``).

The decoded arrays stay in this process's memory (a small cache keyed by the
spec and a fingerprint of the files: relative names, sizes and modification
times); nothing is written into the TFDS data folder, so a failed load leaves
nothing behind that a later run could take for a prepared dataset.
"""

import collections
import dataclasses
import hashlib
import io
import os
import pathlib
import re
import tempfile
import threading
import zipfile
from collections.abc import Mapping

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxgen.data.catalog import DatasetError, DatasetInfo
from jaxgen.validation import ConfigError

FOLDER = "folder:"
NPZ = "npz:"
SPLITS = ("train", "validation", "test")
RESAMPLE = Image.Resampling.LANCZOS
OWN_FOLDER = "jaxgen_own"  # from_array's default folder, inside the TFDS data folder
_GRAY_MODES = ("1", "L", "LA")
_PALETTE_MODES = ("P", "PA")
_CACHE_SIZE = 4  # own datasets kept decoded in memory at once
_CACHE: collections.OrderedDict[tuple[str, str], "OwnDataset"] = collections.OrderedDict()
_CACHE_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class OwnDataset:
    """An own dataset decoded into memory.

    Attributes:
      info: its facts; ``info.name`` is the spec.
      arrays: split -> ``image`` uint8 [N, H, W, C] and ``label`` int32 [N].
    """

    info: DatasetInfo
    arrays: Mapping[str, Mapping[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class _Spec:
    kind: str  # "folder" or "npz"
    path: pathlib.Path  # absolute
    resize: tuple[int, int] | None  # (H, W)


def is_own(name: str) -> bool:
    """Whether ``name`` is an own-data spec (``folder:...`` or ``npz:...``)."""
    return name.startswith((FOLDER, NPZ))


def hash_split(key: str) -> str:
    """The split of the file or example named ``key``: ``train``, ``validation`` or ``test``.

    The first 8 bytes of sha256(key), big-endian, modulo 10: 0 -> test,
    1 -> validation, else train. Independent of any seed.
    """
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def load(spec: str) -> OwnDataset:
    """The dataset of ``spec``, decoded once and cached while its files do not change.

    Raises:
      ConfigError: the spec is malformed (a bad ``resize``, an unknown key).
      DatasetError: a missing path, no images, a corrupt or unreadable file,
        mixed sizes without ``resize``, bad arrays, or an empty split.
    """
    parsed = _parse(spec)
    files = _folder_files(parsed.path) if parsed.kind == "folder" else None
    key = (spec, _fingerprint(parsed, files))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    dataset = _load_folder(spec, parsed, files) if files is not None else _load_npz(spec, parsed)
    with _CACHE_LOCK:
        for old in [k for k in _CACHE if k[0] == spec]:  # an older version of the files
            del _CACHE[old]
        _CACHE[key] = dataset
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return dataset


def dataset_info(spec: str) -> DatasetInfo:
    """The ``DatasetInfo`` of own-data ``spec`` (loads it; see ``load``)."""
    return load(spec).info


def split_arrays(info: DatasetInfo, split: str) -> dict[str, np.ndarray]:
    """``image`` uint8 [N, H, W, C] and ``label`` int32 [N] of one split of ``info.name``.

    The arrays of the very load that gave ``info`` while it is cached (so they
    match ``info`` even if the files changed since), else of a fresh ``load``.
    """
    with _CACHE_LOCK:
        dataset = next((d for d in _CACHE.values() if d.info is info), None)
    if dataset is None:
        dataset = load(info.name)
    return dict(dataset.arrays[split])


def from_array(images, labels=None, *, path: str | os.PathLike | None = None) -> str:
    """Saves an in-memory image array as an ``.npz`` and returns its dataset spec.

    Put the returned string in ``config.dataset``: a string keeps the config
    JSON-serialisable, so that a run can be resumed. The array is checked as an
    ``npz:`` file is (see the module docstring), splits included.

    Args:
      images: uint8 [N, H, W] or [N, H, W, C] with C in {1, 3} (NumPy or JAX).
      labels: optional integers [N], >= 0.
      path: the ``.npz`` file to write (replaced atomically). Default:
        ``<TFDS data folder>/jaxgen_own/<first 16 hex digits of the SHA-256 of
        the arrays>.npz`` (TFDS_DATA_DIR or ``~/tensorflow_datasets``), reused
        if it exists: the same array gives the same spec.

    Returns:
      ``"npz:<absolute path>"``.

    Raises:
      DatasetError: bad arrays (dtype, rank, channels, labels) or a split with
        no example.
      ConfigError: ``path`` does not end in ``.npz``.
    """
    where = "from_array"
    checked_images, checked_labels = _check_arrays(
        np.asarray(images), None if labels is None else np.asarray(labels), where
    )
    _assign_splits([str(i) for i in range(len(checked_images))], where)
    arrays = {"images": np.asarray(images)}  # as given: [N, H, W] stays 3-D
    if checked_labels is not None:
        arrays["labels"] = np.asarray(labels)
    if path is None:
        digest = hashlib.sha256()
        for name, array in arrays.items():
            digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        folder = pathlib.Path(tfds.core.constants.get_default_data_dir()) / OWN_FOLDER
        target = folder / f"{digest.hexdigest()[:16]}.npz"
        if target.is_file():
            return f"{NPZ}{target}"
    else:
        target = pathlib.Path(path).expanduser().absolute()
        if target.suffix != ".npz":
            raise ConfigError(f"from_array: path={str(path)!r} must end in .npz.")
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".npz", delete=False) as f:
        try:
            f.write(buffer.getvalue())
        except BaseException:
            os.unlink(f.name)
            raise
    os.chmod(f.name, 0o644)
    os.replace(f.name, target)
    return f"{NPZ}{target}"


def _parse(spec: str) -> _Spec:
    """Splits ``kind:path?key=value&...`` and checks the keys."""
    kind = "folder" if spec.startswith(FOLDER) else "npz"
    rest = spec[len(FOLDER) if kind == "folder" else len(NPZ) :]
    path, _, query = rest.partition("?")
    if not path:
        raise ConfigError(
            f"dataset={spec!r} names no path; write {kind}:/path/to/"
            + ("images" if kind == "folder" else "file.npz")
            + "."
        )
    resize = None
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if kind != "folder" or key != "resize":
            known = "resize=HxW" if kind == "folder" else "none"
            raise ConfigError(
                f"dataset={spec!r}: unknown option {item!r} (known options of {kind}: "
                f"datasets: {known}). Remove it, e.g. {kind}:{path}."
            )
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        if not match or min(int(match[1]), int(match[2])) < 1:
            raise ConfigError(
                f"dataset={spec!r}: resize={value!r} is not a size; write resize=HxW with "
                f"positive integers (height x width), e.g. {kind}:{path}?resize=32x32."
            )
        resize = (int(match[1]), int(match[2]))
    return _Spec(kind, pathlib.Path(path).expanduser().absolute(), resize)


def _folder_files(root: pathlib.Path) -> dict[str, list[tuple[str, int, int]]]:
    """split (or "" for the hash split) -> sorted (relative path, size, mtime_ns) of its images."""
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DatasetError(
            f"Image folder {root} {what}. Give the folder of your images as "
            "--config.dataset=folder:/path/to/images (an absolute path, or one relative to "
            "the working directory)."
        )
    present = [split for split in SPLITS if (root / split).is_dir()]
    if not present:
        return {"": _scan(root, "")}
    missing = [split for split in ("train", "test") if split not in present]
    if missing:
        raise DatasetError(
            f"Image folder {root} has split sub-folder(s) {', '.join(present)}/ but no "
            f"{' or '.join(m + '/' for m in missing)}: with split sub-folders, train/ and "
            "test/ are required (validation/ is optional). Add the missing folder(s), or "
            "remove the split sub-folders to let jaxgen split the images by a hash of "
            "their names."
        )
    return {split: _scan(root / split, f"{split}/") for split in present}


def _image_extensions() -> frozenset[str]:
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _scan(folder: pathlib.Path, prefix: str) -> list[tuple[str, int, int]]:
    """Image files under ``folder``, recursively: sorted (prefix + relative path, size, mtime)."""
    extensions = _image_extensions()
    found = []
    pending = [(os.fspath(folder), prefix)]
    while pending:
        directory, rel = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    pending.append((entry.path, f"{rel}{entry.name}/"))
                elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in extensions:
                    stat = entry.stat()
                    found.append((f"{rel}{entry.name}", stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def _fingerprint(parsed: _Spec, files: Mapping[str, list] | None) -> str:
    """A digest of the file names, sizes and modification times behind ``parsed``."""
    if files is None:
        if not parsed.path.is_file():
            what = "is not a file" if parsed.path.exists() else "does not exist"
            raise DatasetError(
                f"Array file {parsed.path} {what}. Give an .npz (array 'images', optional "
                "'labels') or .npy file as --config.dataset=npz:/path/to/file.npz, or write "
                "one from an array with jaxgen.data.from_array(images, labels)."
            )
        stat = parsed.path.stat()
        files = {"": [(parsed.path.name, stat.st_size, stat.st_mtime_ns)]}
    listing = (str(parsed.path), sorted(files.items()))  # a relative spec may move with the cwd
    return hashlib.sha256(repr(listing).encode()).hexdigest()


def _load_folder(
    spec: str, parsed: _Spec, files: Mapping[str, list[tuple[str, int, int]]]
) -> OwnDataset:
    root = parsed.path
    names = [name for listing in files.values() for name, _, _ in listing]
    if not names:
        raise DatasetError(
            f"Image folder {root} holds no image files (looked recursively for .png, .jpg, "
            ".bmp, .gif and the other extensions PIL reads; hidden files are skipped). Put "
            "your images there, or point --config.dataset=folder:... at the folder that "
            "holds them."
        )
    if "" in files:  # no split sub-folders: the hash split
        assignment = _assign_splits(names, f"Image folder {root}")
        by_split: dict[str, list[str]] = {s: [] for s in SPLITS if s in assignment.values()}
        for name in names:
            by_split[assignment[name]].append(name)
    else:
        by_split = {split: [name for name, _, _ in listing] for split, listing in files.items()}
        empty = [split for split, listing in by_split.items() if not listing]
        if empty:
            counts = ", ".join(f"{s}/ {len(v)}" for s, v in by_split.items())
            raise DatasetError(
                f"Image folder {root}: split sub-folder {empty[0]}/ holds no image files "
                f"(images per split: {counts}). Put images in it"
                + (", or remove the empty validation/ folder." if empty == ["validation"] else ".")
            )
    decoded, first = {}, None
    for split, split_names in by_split.items():
        images = []
        for name in split_names:
            image = _read_image(root / name, parsed.resize)
            if first is None:
                first = (name, image.shape[:2])
            elif image.shape[:2] != first[1]:
                raise DatasetError(
                    f"Images of folder {root} differ in size: {first[0]} is "
                    f"{_size(first[1])} but {name} is {_size(image.shape[:2])} (height x "
                    "width). jaxgen needs one size: have them all resized by adding "
                    f"?resize=HxW to the dataset, e.g. --config.dataset={FOLDER}{root}"
                    f"?resize={_size(first[1])} (PIL's LANCZOS filter)."
                )
            images.append(image)
        decoded[split] = images
    color = any(image.ndim == 3 for images in decoded.values() for image in images)
    arrays = {}
    for split, images in decoded.items():
        stacked = np.stack([_channels(image, color) for image in images])
        arrays[split] = {"image": stacked, "label": np.full(len(stacked), -1, np.int32)}
    return _dataset(spec, arrays, num_classes=0, num_levels=256)


def _size(shape: tuple[int, ...]) -> str:
    """``"HxW"`` of an image shape [H, W, ...]."""
    return f"{shape[0]}x{shape[1]}"


def _channels(image: np.ndarray, color: bool) -> np.ndarray:
    """[H, W] gray or [H, W, 3] colour -> [H, W, C] with C = 3 if ``color`` else 1."""
    if image.ndim == 3:
        return image
    return np.repeat(image[..., None], 3, axis=-1) if color else image[..., None]


def _read_image(path: pathlib.Path, resize: tuple[int, int] | None) -> np.ndarray:
    """One image file as uint8 [H, W] (grayscale) or [H, W, 3] (colour), resized if asked."""
    converted: Image.Image | None
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("L", "RGB"):
                converted = im
            elif mode in _GRAY_MODES:
                converted = im.convert("L")
            elif mode.startswith("I") or mode == "F":
                converted = None  # refused below, outside this ``try``
            elif mode in _PALETTE_MODES:
                converted = im.convert("RGB")
                rgb = np.asarray(converted)
                if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                    converted = converted.convert("L")  # a palette of grays
            else:
                converted = im.convert("RGB")
            size = None if resize is None else (resize[1], resize[0])  # PIL's (W, H)
            if converted is not None and size is not None and converted.size != size:
                converted = converted.resize(size, RESAMPLE)
            array = None if converted is None else np.asarray(converted)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DatasetError(
            f"Cannot read image file {path} ({type(e).__name__}: {e}). Replace it with a "
            "readable image, or delete it from the folder."
        ) from e
    if array is None:
        raise DatasetError(
            f"Image file {path} has PIL mode {mode!r}: more than 8 bits per pixel, which "
            "jaxgen does not read (its models take 8-bit levels). Convert the images to 8-bit "
            "grayscale or RGB (e.g. PIL: Image.fromarray((np.asarray(im) >> 8).astype("
            "np.uint8)) for 16-bit) and save them again."
        )
    return array


def _load_npz(spec: str, parsed: _Spec) -> OwnDataset:
    path = parsed.path
    if path.suffix not in (".npz", ".npy"):
        raise DatasetError(
            f"Array file {path} is neither .npz nor .npy. Save your images with "
            "np.savez(path, images=..., labels=...) (or np.save for images alone), or use "
            "jaxgen.data.from_array(images, labels)."
        )
    where = f"Array file {path}"
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    files: list[str] = []
    try:
        if path.suffix == ".npy":
            images = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                files = list(archive.files)
                if "images" in files:
                    images = archive["images"]
                    labels = archive["labels"] if "labels" in files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # pickles refused too
        raise DatasetError(
            f"Cannot read array file {path} ({type(e).__name__}: {e}). Write it again with "
            "np.savez(path, images=..., labels=...) or jaxgen.data.from_array."
        ) from e
    if images is None:
        raise DatasetError(
            f"{where} has no array 'images' (it holds {', '.join(files) or 'nothing'}). Save "
            "the images under that name: np.savez(path, images=images, labels=labels)."
        )
    images, labels = _check_arrays(images, labels, where)
    assignment = _assign_splits([str(i) for i in range(len(images))], where)
    arrays = {}
    for split in SPLITS:
        index = np.array([i for i in range(len(images)) if assignment[str(i)] == split], np.int64)
        if len(index):
            arrays[split] = {
                "image": images[index],
                "label": (
                    np.full(len(index), -1, np.int32)
                    if labels is None
                    else labels[index].astype(np.int32)
                ),
            }
    num_classes = 0 if labels is None else int(labels.max()) + 1
    num_levels = 2 if int(images.max()) <= 1 else 256
    return _dataset(spec, arrays, num_classes=num_classes, num_levels=num_levels)


def _check_arrays(
    images: np.ndarray, labels: np.ndarray | None, where: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Checks an image array (and labels): returns uint8 [N, H, W, C] and int64 [N] or None."""
    if images.dtype != np.uint8:
        raise DatasetError(
            f"{where}: images have dtype {images.dtype}, but must be uint8 (8-bit levels "
            "0..255, or 0/1 for binary data). Convert them, e.g. "
            "(x * 255).round().astype(np.uint8) for floats in [0, 1], or x.astype(np.uint8) "
            "for integers in 0..255."
        )
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DatasetError(
            f"{where}: images have shape {images.shape}, but must be [N, H, W] (grayscale) or "
            "[N, H, W, C] with C = 1 or 3. Reshape them, e.g. x.reshape(N, H, W) for flat "
            "grayscale images, or x.transpose(0, 2, 3, 1) for channels-first ones."
        )
    if 0 in images.shape:
        raise DatasetError(
            f"{where}: images have shape {images.shape}, with no example or an empty axis. "
            "Give at least one image of at least 1x1 pixels."
        )
    if labels is None:
        return images, None
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"{where}: labels have shape {labels.shape} and dtype {labels.dtype}, but must be "
            f"integers of shape ({len(images)},), one per image. Give one class index per image, "
            "or no labels."
        )
    if labels.min() < 0:
        raise DatasetError(
            f"{where}: labels hold the negative value {int(labels.min())}, but must be class "
            "indices >= 0 (num_classes is max + 1). Renumber the classes 0, 1, 2, ..."
        )
    return images, labels.astype(np.int64)


def _assign_splits(names: list[str], where: str) -> dict[str, str]:
    """name -> ``hash_split(name)``; raises if train or test gets no example."""
    assignment = {name: hash_split(name) for name in names}
    counts = collections.Counter(assignment.values())
    empty = [split for split in ("train", "test") if not counts[split]]
    if empty:
        raise DatasetError(
            f"{where}: the hash split of its {len(names)} images left split {empty[0]!r} "
            f"empty (train {counts['train']}, validation {counts['validation']}, test "
            f"{counts['test']}; about 80/10/10% go to each). Add images (a few dozen at "
            "least), or, for a folder, put them in train/ and test/ (and optionally "
            "validation/) sub-folders to choose the splits yourself."
        )
    return assignment


def _dataset(
    spec: str, arrays: dict[str, dict[str, np.ndarray]], num_classes: int, num_levels: int
) -> OwnDataset:
    shape = next(iter(arrays.values()))["image"].shape[1:]
    splits = {split: len(arrays[split]["image"]) for split in SPLITS if split in arrays}
    for split_arrays_ in arrays.values():
        split_arrays_["image"].setflags(write=False)
        split_arrays_["label"].setflags(write=False)
    info = DatasetInfo(
        name=spec,
        image_shape=(int(shape[0]), int(shape[1]), int(shape[2])),
        num_classes=num_classes,
        num_levels=num_levels,
        splits=splits,
        train_split="train",
        eval_split="validation" if "validation" in splits else "test",
        test_split="test",
    )
    return OwnDataset(info, {split: arrays[split] for split in splits})
