"""The README's steps for adding a variant, followed on a copy of the
source tree: one C file, one line in csrc/variants.h, a rebuild.  The new
variant must be listed and read eager's checksums.  (Builds the C core
once, in a temporary directory: about 10 s.)"""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

from lazybench import _array as core

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Step 1 of the README: the variant's file.  Eager's logic, renamed.
TRIVIAL_C = r'''/* trivial: every element computed at create, as eager does. */
#include "lb_core.h"

#include <sys/mman.h>

static int trivial_fill(lb_array *a, void *ctx)
{
    (void)ctx;
    int rc = lb_fill_range(a, 0, a->n, (int64_t *)a->priv);
    if (rc == LB_OK) {
        lb_count(&a->c.elements_materialised, (uint64_t)a->n);
        lb_count(&a->c.pages_materialised, (uint64_t)a->npages);
    }
    return rc;
}

static int trivial_create(lb_array *a)
{
    void *p = mmap(NULL, a->bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return LB_ENOMEM;
    a->priv = p;
    a->view = p;
    int rc = lb_guarded(a, trivial_fill, NULL);
    if (rc)
        munmap(p, a->bytes);
    return rc;
}

static int trivial_nothing(lb_array *a)
{
    (void)a;
    return LB_OK;
}

static void trivial_release(lb_array *a)
{
    munmap(a->priv, a->bytes);
}

const struct lb_variant_ops lb_variant_trivial = {
    .name = "trivial",
    .access = LB_ACCESS_FLAT,
    .reset_noop = 1,
    .base = 1,              /* computes everything first: a ratio base */
    .create = trivial_create,
    .reset = trivial_nothing,
    .force = trivial_nothing,
    .release = trivial_release,
};
'''

# The new variant against eager, in the copy: checksums and counters.
CHECK = r'''
import json
from lazybench import _array as core
out = {}
for v in ("trivial", "eager"):
    for g in core.GENERATORS:
        for w in core.WORKLOADS:
            with core.LazyArray(v, 5000, g, spin=3, seed=7) as arr:
                r = arr.run(w, 0.5, 11)
                out[f"{v}/{g}/{w}"] = [r.checksum, r.accesses,
                                       arr.counters().elements_materialised]
print(json.dumps(out))
'''


def _copy_tree(dest: pathlib.Path) -> None:
    """What setup.py needs, without anything built."""
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    skip = shutil.ignore_patterns("*.so", "__pycache__", "_core.c", "*.o")
    for name in ("csrc", "lazybench"):
        shutil.copytree(ROOT / name, dest / name, ignore=skip)


def _run(args: list[str], cwd: pathlib.Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_adding_a_variant_takes_one_file_and_one_line(
        tmp_path: pathlib.Path) -> None:
    _copy_tree(tmp_path)
    assert not list(tmp_path.rglob("*.so"))
    # 1. the variant's file
    (tmp_path / "csrc" / "variant_trivial.c").write_text(TRIVIAL_C)
    # 2. its line in the list
    with open(tmp_path / "csrc" / "variants.h", "a") as f:
        f.write("LB_VARIANT(trivial)\n")
    # 3. rebuild
    _run([sys.executable, "setup.py", "build_ext", "--inplace"], tmp_path)
    # 4. it is listed, after the others
    listing = _run([sys.executable, "-m", "lazybench", "list"], tmp_path)
    names = [line.split()[0] for line in listing.splitlines()
             if line.startswith("  ") and line.split()[0] in
             (*core.VARIANTS, "trivial")]
    assert names == [*core.VARIANTS, "trivial"], listing
    assert "  trivial " in listing and "available" in listing
    # and it reads eager's values
    got = json.loads(_run([sys.executable, "-c", CHECK], tmp_path))
    for key, value in got.items():
        if key.startswith("trivial/"):
            assert value == got["eager/" + key.split("/", 1)[1]], key
    assert len(got) == 2 * len(core.GENERATORS) * len(core.WORKLOADS)


def test_variants_declare_only_known_floors() -> None:
    """What a variant declares for the reports names floors of the table
    (csrc/floors.c), and the ratio bases, and only they, compute every
    element when the array is made."""
    for name in core.VARIANTS:
        info = core.variant_info(name)
        assert set(info.parts) <= set(core.FLOORS), name
        assert info.joint_floor in ("", *core.FLOORS), name
        if info.parts or info.joint_floor:
            assert info.granule == core.PAGE_ELEMENTS, name
    # a base computes every element when created; a lazy variant none
    for name in core.VARIANTS:
        if not core.availability(name).available:
            continue
        with core.LazyArray(name, 4096) as arr:
            made = arr.counters().elements_materialised
        assert made == (4096 if core.variant_info(name).base else 0), name
