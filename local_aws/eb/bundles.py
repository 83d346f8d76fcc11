"""Source bundles in moto's S3 backend (same process, same account).

CreateApplicationVersion checks the bundle exists, as AWS does: a missing
bucket or key is ``InvalidParameterCombination`` "Unable to download from S3
location (Bucket: b  Key: k). Reason: Not Found" (two spaces, as AWS writes
it); a bucket in another region is ``S3LocationNotInServiceRegionException``.

:func:`unpack` extracts a bundle once (by content) for environments that run
their version (``serving``).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from moto.s3.exceptions import MissingBucket
from moto.s3.models import S3Backend, s3_backends
from moto.utilities.utils import get_partition

from .errors import InvalidParameterCombination, S3LocationNotInServiceRegion, SourceBundleDeletion


def _s3(account_id: str, region: str) -> S3Backend:
    return s3_backends[account_id][get_partition(region)]


def _unreachable(bucket: str, key: str, reason: str = "Not Found") -> InvalidParameterCombination:
    return InvalidParameterCombination(f"Unable to download from S3 location (Bucket: {bucket}  Key: {key}). Reason: {reason}")


def check(account_id: str, region: str, bucket: str, key: str) -> None:
    """Raise the AWS error when the bundle cannot be read from ``region``."""
    s3 = _s3(account_id, region)
    try:
        found = s3.get_bucket(bucket)
    except MissingBucket as exc:
        raise _unreachable(bucket, key) from exc
    if found.region_name != region:
        raise S3LocationNotInServiceRegion(
            f"The specified S3 bucket '{bucket}' is in region {found.region_name}; it must be in {region}, the region of the service."
        )
    if s3.get_object(bucket, key) is None:
        raise _unreachable(bucket, key)


def read(account_id: str, region: str, bucket: str, key: str) -> bytes | None:
    try:
        found = _s3(account_id, region).get_object(bucket, key)
    except MissingBucket:
        return None
    return None if found is None else found.value


def is_zip(data: bytes | None) -> bool:
    return data is not None and zipfile.is_zipfile(io.BytesIO(data))


def delete(account_id: str, region: str, bucket: str, key: str) -> None:
    try:
        _s3(account_id, region).delete_object(bucket, key)
    except MissingBucket as exc:
        raise SourceBundleDeletion(
            "Unable to delete the Amazon S3 source bundle associated with the application version. The application version was deleted successfully."
        ) from exc


def unpack(data: bytes, root: Path) -> Path:
    """Unpack a bundle once into ``root/<sha256 prefix>`` (content-addressed); returns the folder.

    Members that would land outside the folder (absolute paths, ``..``) are
    refused, as the platform's unzip refuses them.
    """
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = root / digest
    if target.is_dir():  # complete: folders only get there by an atomic rename
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=root))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.infolist():
                name = PurePosixPath(member.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise ValueError(f"the source bundle has an unsafe path: {member.filename}")
                archive.extract(member, staging)
                mode = (member.external_attr >> 16) & 0o777
                if mode and not member.is_dir():
                    (staging / name).chmod(mode | 0o600)
        try:
            staging.rename(target)
        except OSError:  # unpacked meanwhile by another deploy of the same content
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
