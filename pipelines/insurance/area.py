"""Where the insurance trips live: one owner-only folder holding their lake and their warehouse file.

    {insurance_dir}/                      0700
        lake/insurance_trips/zone_id=/date=/hour=/part-0.parquet      the newest delivery of each hour
        lake/_raw/insurance_trips/...      every delivery as received (gzip'd JSON)
        lake/quarantine/dataset=insurance_trips/...                    refused records, with their reason
        lake/superseded/insurance_trips/...                            records a later delivery replaced
        insurance.duckdb                   the insurance warehouse (pipelines/insurance/warehouse.py)

Every folder is 0700 and every file 0600 from the moment it exists (the lake's writes create them so, see
pipelines/lake/filesystem.write_whole; the warehouse is built inside the private folder and renamed into place).
`exposed` lists anything that is not, and `open_area` refuses to work in a tree that has such a path.
"""

import stat
from dataclasses import dataclass
from pathlib import Path

from pipelines.lake.filesystem import PRIVATE_FILE, PRIVATE_FOLDER, make_private_folder
from pipelines.lake.store import Lake

WAREHOUSE_FILE = "insurance.duckdb"


class ExposedInsuranceData(PermissionError):
    """A file or folder of the insurance area that someone other than its owner may read, write or enter."""


@dataclass(frozen=True)
class InsuranceArea:
    root: Path

    @property
    def lake(self) -> Lake:
        return Lake(self.root / "lake", private=True)

    @property
    def warehouse(self) -> Path:
        return self.root / WAREHOUSE_FILE


def exposed(root: Path) -> list[str]:
    """Every path under `root` (itself included) that is not owner-only: folders other than 0700, files other
    than 0600, each with its mode. Symbolic links count as exposed: they could lead anywhere."""
    found = []
    paths = [root, *root.rglob("*")] if root.exists() else []
    for path in paths:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            found.append(f"{path} is a symbolic link")
            continue
        wanted = PRIVATE_FOLDER if stat.S_ISDIR(mode) else PRIVATE_FILE
        if stat.S_IMODE(mode) != wanted:
            found.append(f"{path} is {stat.S_IMODE(mode):04o}, not {wanted:04o}")
    return found


def open_area(root: Path) -> InsuranceArea:
    """The insurance area at `root`, created owner-only if it is not there; raises ExposedInsuranceData naming
    the paths that others could reach (a copy made with other permissions, a changed umask, a hand-made folder)."""
    make_private_folder(root)
    found = exposed(root)
    if found:
        shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
        raise ExposedInsuranceData(
            f"the insurance trips' folder {root} must be readable by its owner only (folders 0700, files 0600): "
            f"{shown}. Fix with: chmod -R u=rwX,go= {root}"
        )
    return InsuranceArea(root)
