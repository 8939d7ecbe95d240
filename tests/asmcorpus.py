"""Generated instruction corpora for sigsegv-redirect, assembled with gcc.

Each form becomes one function ``int64_t f(const void *handle, void *out)``
that puts the handle (minus the form's displacement) in the form's address
register, sets every other register it uses to a constant, runs the one
instruction under test (at a global label, so its address can be decoded
on its own), and writes what the instruction produced to ``out``:

    out[0]  the general-purpose destination register (64 bits), or 0
    out[1]  RFLAGS
    out[2]  the address register afterwards, minus the handle passed
            (so a register left moved to the values shows up), or its raw
            value when the instruction overwrote it
    out[4:8] the vector destination (ymm0, 32 bytes), or st(0) (10 bytes)

Running a read form once on an eager element address and once on a redirect
handle must give the same ``out``.  Store and read-modify-write forms are
generated as a cross product of mnemonics, operand sizes, operand kinds and
addressing modes; every one of them must be refused.
"""
from __future__ import annotations

import ctypes
import dataclasses
import itertools
import pathlib
import subprocess
from typing import Iterable

# Registers a handle may sit in (never rsp; rax, rcx, rdx hold data).
BASES = ("rbx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12",
         "r13", "r14", "r15")
# Addressing modes: (operand with {B} for the handle register, offset of
# the handle from the register's value).  rcx holds 2 as a data index, and
# 0x20 where it is the base and the handle is the index.
MODES = (("({B})", 0), ("0x10({B})", 0x10), ("({B},%rcx,8)", 16),
         ("0x8(%rcx,{B},1)", 0x28))

CONDITIONS = ("a ae b be e g ge l le ne no np ns o p s").split()


def cpu_flags() -> set[str]:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@dataclasses.dataclass(frozen=True)
class Form:
    name: str                 # the instruction as written, {M} filled in
    text: str                 # the instruction with {M} for memory
    dest: str                 # q l w b: GPR; x y: vector; f: x87; n: none
    base: str = "rbx"         # the register holding the handle
    mode: int = 0             # index into MODES
    overwrites_base: bool = False
    feature: str = ""         # cpu flag it needs, "" for baseline x86-64
    kind: str = "read"        # read, store, other (for refused corpora)

    @property
    def operand(self) -> str:
        return MODES[self.mode][0].format(B="%" + self.base)

    @property
    def offset(self) -> int:
        return MODES[self.mode][1]

    @property
    def insn(self) -> str:
        return self.text.replace("{M}", self.operand)


def _read_templates() -> list[tuple[str, str, str]]:
    """(instruction with {M}, destination class, cpu feature)."""
    t: list[tuple[str, str, str]] = []
    add = t.append
    for ins, dst in (("movq {M}, %rax", "q"), ("movl {M}, %eax", "l"),
                     ("movw {M}, %ax", "w"), ("movb {M}, %al", "b"),
                     ("movzbl {M}, %eax", "l"), ("movzbq {M}, %rax", "q"),
                     ("movzwl {M}, %eax", "l"), ("movzwq {M}, %rax", "q"),
                     ("movsbl {M}, %eax", "l"), ("movsbq {M}, %rax", "q"),
                     ("movswl {M}, %eax", "l"), ("movswq {M}, %rax", "q"),
                     ("movslq {M}, %rax", "q"),
                     ("imulq $7, {M}, %rax", "q"),
                     ("imull $-3, {M}, %eax", "l"),
                     ("cvtsd2si {M}, %rax", "q"), ("cvttsd2si {M}, %rax", "q"),
                     ("cvtss2si {M}, %eax", "l"), ("cvttss2si {M}, %eax", "l")):
        add((ins, dst, ""))
    add(("movbeq {M}, %rax", "q", "movbe"))
    add(("movbel {M}, %eax", "l", "movbe"))
    add(("popcntq {M}, %rax", "q", "popcnt"))
    add(("popcntl {M}, %eax", "l", "popcnt"))
    add(("lzcntq {M}, %rax", "q", "abm"))
    add(("tzcntq {M}, %rax", "q", "bmi1"))
    for op in ("blsi", "blsmsk", "blsr"):
        add((f"{op}q {{M}}, %rax", "q", "bmi1"))
    add(("andnq {M}, %rdx, %rax", "q", "bmi1"))
    add(("bextrq %rcx, {M}, %rax", "q", "bmi1"))
    add(("rorxq $5, {M}, %rax", "q", "bmi2"))
    for op in ("shlx", "sarx", "shrx", "bzhi"):
        add((f"{op}q %rcx, {{M}}, %rax", "q", "bmi2"))
    for op in ("pdep", "pext"):
        add((f"{op}q {{M}}, %rdx, %rax", "q", "bmi2"))
    add(("vcvtsd2si {M}, %rax", "q", "avx"))
    add(("vcvttsd2si {M}, %rax", "q", "avx"))
    for op in ("add", "or", "adc", "sbb", "and", "sub", "xor"):
        for suffix, reg, dst in (("q", "%rax", "q"), ("l", "%eax", "l"),
                                 ("w", "%ax", "w"), ("b", "%al", "b")):
            add((f"{op}{suffix} {{M}}, {reg}", dst, ""))
    add(("imulq {M}, %rax", "q", ""))
    add(("crc32q {M}, %rax", "q", "sse4_2"))
    add(("crc32b {M}, %eax", "l", "sse4_2"))
    for cc in CONDITIONS:
        add((f"cmov{cc}q {{M}}, %rax", "q", ""))
    for ins in ("cmpq {M}, %rax", "cmpq %rax, {M}", "cmpl {M}, %eax",
                "cmpb {M}, %al", "cmpq $5, {M}", "testq %rax, {M}",
                "testb $1, {M}", "testq {M}, %rax", "btq $3, {M}",
                "btl $17, {M}"):
        add((ins, "n", ""))
    # SSE into xmm0
    for op in ("movsd", "movss", "movaps", "movups", "movapd", "movupd",
               "movdqa", "movdqu", "movq", "movd", "movhps", "movlps",
               "movhpd", "movlpd", "lddqu", "movddup", "movshdup",
               "movsldup", "addpd", "addps", "addsd", "addss", "subpd",
               "subsd", "mulpd", "mulsd", "divpd", "divsd", "minpd", "maxpd",
               "sqrtpd", "sqrtsd", "andpd", "andps", "orps", "xorps", "paddb",
               "paddw", "paddd", "paddq", "psubq", "pand", "pandn", "por",
               "pxor", "pcmpeqb", "pcmpgtd", "cvtdq2pd", "cvtps2pd"):
        add((f"{op} {{M}}, %xmm0", "x", ""))
    add(("cvtsi2sdq {M}, %xmm0", "x", ""))
    add(("cvtsi2ssl {M}, %xmm0", "x", ""))
    add(("pshufd $0x1b, {M}, %xmm0", "x", ""))
    for op in ("pmovzxbd", "pmovzxdq", "pmovsxbw", "pmovsxdq", "pcmpeqq"):
        add((f"{op} {{M}}, %xmm0", "x", "sse4_1"))
    for op, imm in (("pinsrb", 1), ("pinsrw", 2), ("pinsrd", 3),
                    ("pinsrq", 1), ("insertps", 0x10)):
        add((f"{op} ${imm}, {{M}}, %xmm0", "x",
             "" if op == "pinsrw" else "sse4_1"))
    for op in ("ucomisd", "ucomiss", "comisd", "comiss"):
        add((f"{op} {{M}}, %xmm1", "n", ""))
    add(("ptest {M}, %xmm1", "n", "sse4_1"))
    # AVX into ymm0 / xmm0
    for op in ("vmovdqu", "vmovdqa", "vmovups", "vmovupd", "vmovaps",
               "vmovapd", "vlddqu", "vmovddup"):
        add((f"{op} {{M}}, %ymm0", "y", "avx"))
        add((f"{op} {{M}}, %xmm0", "y", "avx"))
    for op in ("vmovsd", "vmovss", "vmovq", "vmovd"):
        add((f"{op} {{M}}, %xmm0", "y", "avx"))
    for op in ("vbroadcastss", "vbroadcastsd", "vbroadcastf128"):
        add((f"{op} {{M}}, %ymm0", "y", "avx"))
    for op in ("vbroadcasti128", "vpbroadcastb", "vpbroadcastw",
               "vpbroadcastd", "vpbroadcastq", "vpmovzxbd", "vpmovzxdq"):
        add((f"{op} {{M}}, %ymm0", "y", "avx2"))
    add(("vptest {M}, %ymm1", "n", "avx"))
    add(("vucomisd {M}, %xmm1", "n", "avx"))
    for op in ("vaddpd", "vaddps", "vmulpd"):
        add((f"{op} {{M}}, %ymm1, %ymm0", "y", "avx"))
    add(("vaddsd {M}, %xmm1, %xmm0", "y", "avx"))
    for op in ("vpaddq", "vpaddd", "vpand", "vpor", "vpxor", "vpcmpeqb",
               "vpcmpeqq", "vpminub", "vpmaxsd"):
        add((f"{op} {{M}}, %ymm1, %ymm0", "y", "avx2"))
    add(("vfmadd231pd {M}, %ymm1, %ymm0", "y", "fma"))
    for op, feature in (("vpmaskmovq", "avx2"), ("vpmaskmovd", "avx2"),
                        ("vmaskmovps", "avx"), ("vmaskmovpd", "avx")):
        add((f"{op} {{M}}, %ymm1, %ymm0", "y", feature))
    add(("vcvtsi2sdq {M}, %xmm1, %xmm0", "y", "avx"))
    add(("vpermq $0x1b, {M}, %ymm0", "y", "avx2"))
    add(("vpshufd $0x1b, {M}, %ymm0", "y", "avx2"))
    add(("vpinsrq $1, {M}, %xmm1, %xmm0", "y", "avx"))
    add(("vpinsrd $2, {M}, %xmm1, %xmm0", "y", "avx"))
    add(("vinsertf128 $1, {M}, %ymm1, %ymm0", "y", "avx"))
    add(("vinserti128 $1, {M}, %ymm1, %ymm0", "y", "avx2"))
    # x87 on st(0)
    for ins in ("fldl {M}", "flds {M}", "fldt {M}", "fildq {M}", "fildl {M}",
                "faddl {M}", "fmull {M}", "fsubl {M}", "fsubrl {M}",
                "fdivl {M}", "fdivrl {M}", "fiaddl {M}", "fimull {M}",
                "fcoml {M}", "fcompl {M}"):
        add((ins, "f", ""))
    return t


def read_forms(flags: set[str]) -> list[Form]:
    """Every read template in every addressing mode, the handle register
    cycling through BASES; plus forms whose destination overwrites the
    handle register whole (the register is then not put back)."""
    out = []
    bases = itertools.cycle(BASES)
    for text, dest, feature in _read_templates():
        if feature and feature not in flags:
            continue
        for mode in range(len(MODES)):
            base = next(bases)
            out.append(Form(text.replace("{M}", MODES[mode][0].format(
                B="%" + base)), text, dest, base, mode, feature=feature))
    for base in BASES:
        for text in (f"movq {{M}}, %{base}", f"movl {{M}}, %{_r32(base)}",
                     f"movzbl {{M}}, %{_r32(base)}", f"imulq $3, {{M}}, %{base}"):
            out.append(Form(text.replace("{M}", f"(%{base})"), text, "base",
                            base, 0, overwrites_base=True))
    return out


def _r32(reg: str) -> str:
    if reg.startswith("r") and reg[1:].isdigit():
        return reg + "d"
    return "e" + reg[1:]


def _r16(reg: str) -> str:
    if reg.startswith("r") and reg[1:].isdigit():
        return reg + "w"
    return reg[1:]


def _r8(reg: str) -> str:
    if reg.startswith("r") and reg[1:].isdigit():
        return reg + "b"
    return {"rbx": "bl", "rsi": "sil", "rdi": "dil", "rbp": "bpl"}[reg]


def conflict_forms() -> list[Form]:
    """Reads that must be refused because the handle's register is also a
    data operand, or is overwritten only in part."""
    out = []
    for base in ("rbx", "rsi", "r12"):
        m = f"(%{base})"
        for text in (f"addq {{M}}, %{base}", f"cmpq {{M}}, %{base}",
                     f"subl {{M}}, %{_r32(base)}", f"movb {{M}}, %{_r8(base)}",
                     f"movw {{M}}, %{_r16(base)}", f"cmovneq {{M}}, %{base}",
                     f"imulq {{M}}, %{base}", f"andnq {{M}}, %{base}, %rax",
                     f"shlxq %{base}, {{M}}, %rax"):
            out.append(Form(text.replace("{M}", m), text, "n", base, 0,
                            kind="conflict",
                            feature="bmi1" if "andn" in text else
                            "bmi2" if "shlx" in text else ""))
    return out


def _store_templates() -> list[tuple[str, str]]:
    """(instruction with {M}, cpu feature) for stores and read-modify-write
    forms, generated as cross products."""
    t: list[tuple[str, str]] = []
    sizes = (("q", "%rax", "$5"), ("l", "%eax", "$5"), ("w", "%ax", "$5"),
             ("b", "%al", "$5"))
    for s, reg, imm in sizes:
        t += [(f"mov{s} {reg}, {{M}}", ""), (f"mov{s} {imm}, {{M}}", "")]
        for op in ("add", "or", "adc", "sbb", "and", "sub", "xor"):
            t += [(f"{op}{s} {reg}, {{M}}", ""), (f"{op}{s} {imm}, {{M}}", ""),
                  (f"lock {op}{s} {reg}, {{M}}", "")]
        for op in ("inc", "dec", "neg", "not"):
            t += [(f"{op}{s} {{M}}", ""), (f"lock {op}{s} {{M}}", "")]
        for op in ("rol", "ror", "rcl", "rcr", "shl", "shr", "sar", "sal"):
            t += [(f"{op}{s} {{M}}", ""), (f"{op}{s} $3, {{M}}", ""),
                  (f"{op}{s} %cl, {{M}}", "")]
        for op in ("xchg", "xadd", "cmpxchg"):
            t += [(f"{op}{s} {reg}, {{M}}", "")]
        t += [(f"lock xadd{s} {reg}, {{M}}", ""),
              (f"lock cmpxchg{s} {reg}, {{M}}", "")]
        if s != "b":
            for op in ("bts", "btr", "btc"):
                t += [(f"{op}{s} $3, {{M}}", ""), (f"{op}{s} {reg}, {{M}}", ""),
                      (f"lock {op}{s} $3, {{M}}", "")]
            t += [(f"shld{s} $3, {reg.replace('a', 'd')}, {{M}}", ""),
                  (f"shrd{s} %cl, {reg.replace('a', 'd')}, {{M}}", "")]
    t += [(f"set{cc} {{M}}", "") for cc in CONDITIONS]
    t += [("movntiq %rax, {M}", ""), ("movntil %eax, {M}", ""),
          ("movbeq %rax, {M}", "movbe"), ("movbel %eax, {M}", "movbe"),
          ("popq {M}", ""), ("popw {M}", ""), ("cmpxchg8b {M}", ""),
          ("lock cmpxchg8b {M}", ""), ("cmpxchg16b {M}", ""),
          ("lock cmpxchg16b {M}", "")]
    # x87
    t += [(f"{op} {{M}}", "") for op in (
        "fsts", "fstl", "fstps", "fstpl", "fstpt", "fists", "fistl",
        "fistps", "fistpl", "fistpll", "fisttps", "fisttpl", "fisttpll",
        "fbstp", "fnstcw", "fnstsw", "fnstenv", "fnsave", "fxsave",
        "fxsave64")]
    # SSE
    for op in ("movaps", "movups", "movapd", "movupd", "movdqa", "movdqu",
               "movss", "movsd", "movq", "movd", "movlps", "movhps", "movlpd",
               "movhpd", "movntps", "movntpd", "movntdq"):
        t.append((f"{op} %xmm0, {{M}}", ""))
    for op, imm, feature in (("pextrb", 1, "sse4_1"), ("pextrw", 2, "sse4_1"),
                             ("pextrd", 1, "sse4_1"), ("pextrq", 1, "sse4_1"),
                             ("extractps", 1, "sse4_1")):
        t.append((f"{op} ${imm}, %xmm0, {{M}}", feature))
    t += [("stmxcsr {M}", ""), ("vstmxcsr {M}", "avx")]
    # AVX
    for op in ("vmovaps", "vmovups", "vmovapd", "vmovupd", "vmovdqa",
               "vmovdqu", "vmovntps", "vmovntpd", "vmovntdq"):
        t += [(f"{op} %ymm0, {{M}}", "avx"), (f"{op} %xmm0, {{M}}", "avx")]
    for op in ("vmovss", "vmovsd", "vmovq", "vmovd", "vmovlps", "vmovhps"):
        t.append((f"{op} %xmm0, {{M}}", "avx"))
    t += [("vextractf128 $1, %ymm0, {M}", "avx"),
          ("vextracti128 $1, %ymm0, {M}", "avx2"),
          ("vpextrq $1, %xmm0, {M}", "avx"), ("vpextrb $3, %xmm0, {M}", "avx"),
          ("vextractps $1, %xmm0, {M}", "avx"),
          ("vmaskmovps %ymm0, %ymm1, {M}", "avx"),
          ("vmaskmovpd %ymm0, %ymm1, {M}", "avx"),
          ("vpmaskmovq %ymm0, %ymm1, {M}", "avx2"),
          ("vpmaskmovd %ymm0, %ymm1, {M}", "avx2"),
          ("vcvtps2ph $0, %ymm0, {M}", "f16c")]
    # AVX-512 (decoded everywhere, run only where the CPU has it)
    for op in ("vmovdqu64", "vmovdqu32", "vmovdqu8", "vmovdqu16", "vmovaps",
               "vmovupd", "vmovntdq"):
        t.append((f"{op} %zmm0, {{M}}", "avx512f"))
    for op in ("vmovdqu64", "vmovdqu32", "vmovups"):
        t.append((f"{op} %zmm0, {{M}}{{%k1}}", "avx512f"))
    for op in ("vpcompressd", "vpcompressq", "vcompressps", "vcompresspd"):
        t.append((f"{op} %zmm0, {{M}}{{%k1}}", "avx512f"))
    for op in ("vpmovqd", "vpmovqb", "vpmovdb", "vpmovqw", "vpmovdw",
               "vpmovsqd", "vpmovusqd"):
        t.append((f"{op} %zmm0, {{M}}", "avx512f"))
    t += [("vextractf32x4 $1, %zmm0, {M}", "avx512f"),
          ("vextracti64x4 $1, %zmm0, {M}", "avx512f")]
    return t


def _other_templates() -> list[tuple[str, str]]:
    """Instructions that read memory but are not plain reads (implicit
    operands, control flow, state loads): refused all the same."""
    return [("pushq {M}", ""), ("pushw {M}", ""), ("xlatb", ""),
            ("lodsq", ""), ("lodsb", ""), ("scasq", ""), ("cmpsq", ""),
            ("ldmxcsr {M}", ""), ("fldcw {M}", ""), ("fxrstor {M}", ""),
            ("btq %rax, {M}", ""), ("btl %eax, {M}", ""),
            ("movsq", ""), ("stosq", ""), ("rep movsb", ""),
            ("maskmovdqu %xmm1, %xmm0", ""), ("lock orq $0, {M}", ""),
            ("clflush {M}", "")]


def refused_forms(flags: set[str], *, include_missing: bool = False
                  ) -> list[Form]:
    """Stores, read-modify-writes and other non-read forms, in the first
    two addressing modes, base registers cycling.  Forms needing a CPU
    feature this machine lacks are included only with include_missing
    (to be decoded, never run)."""
    out = []
    bases = itertools.cycle(BASES)
    for kind, templates in (("store", _store_templates()),
                            ("other", _other_templates())):
        for text, feature in templates:
            if feature and feature not in flags and not include_missing:
                continue
            modes = (0, 1) if "{M}" in text else (0,)
            for mode in modes:
                # implicit-operand instructions read through rsi/rdi/rbx
                base = ("rsi" if text.startswith(("lods", "cmps", "movs"))
                        else "rdi" if text.startswith(("scas", "stos",
                                                       "maskmov", "rep"))
                        else "rbx" if text == "xlatb" else next(bases))
                name = text.replace("{M}", MODES[mode][0].format(
                    B="%" + base))
                out.append(Form(name, text, "n", base, mode,
                                feature=feature, kind=kind))
    return out


_DATA_SETUP = """\
    movabs $0x1111111111111111, %rax
    movq $2, %rcx
    movabs $0x3333333333333333, %rdx
    vpcmpeqd %ymm1, %ymm1, %ymm1
    vpxor %ymm0, %ymm0, %ymm0
    fninit
    fld1
    cmpq %rdx, %rax
"""


def _function(k: int, form: Form) -> str:
    b = "%" + form.base
    lines = [f".globl lbf_{k}", f".type lbf_{k}, @function", ".p2align 4",
             f"lbf_{k}:",
             "    push %rbx", "    push %rbp", "    push %r12", "    push %r13",
             "    push %r14", "    push %r15", "    push %rsi",
             _DATA_SETUP.rstrip("\n")]
    # the handle: in the index with rcx = 0x20 as base, else in the base
    if form.mode == 3:
        lines.append("    movq $0x20, %rcx")
    lines.append(f"    lea {-form.offset}(%rdi), {b}")
    # a register bit offset (bt %rax, m) or table index (xlatb) stays small,
    # so the access stays on the element
    if form.text.startswith(("xlat", "bt", "lock bt")) and "%" in \
            form.text.split(",")[0]:
        lines.append("    movq $3, %rax")
    lines += [f".globl lbi_{k}", f"lbi_{k}:", f"    {form.insn}"]
    # what the instruction produced
    lines += [f"    push {b}", "    pushfq", "    push %rax",
              "    movq 24(%rsp), %rdi",
              "    popq 0(%rdi)", "    popq 8(%rdi)", "    popq 16(%rdi)"]
    if form.dest == "f":
        lines.append("    fstpt 32(%rdi)")
    else:
        lines.append("    vmovdqu %ymm0, 32(%rdi)")
    lines += ["    fninit", "    vzeroupper",
              "    pop %rsi", "    pop %r15", "    pop %r14", "    pop %r13",
              "    pop %r12", "    pop %rbp", "    pop %rbx",
              "    xor %eax, %eax", "    ret",
              f".size lbf_{k}, .-lbf_{k}"]
    return "\n".join(lines)


class Compiled:
    """The corpus as a shared object: function and instruction addresses."""

    def __init__(self, forms: list[Form], workdir: pathlib.Path,
                 name: str) -> None:
        self.forms = forms
        src = workdir / f"{name}.S"
        lib = workdir / f"{name}.so"
        body = "\n".join(_function(k, f) for k, f in enumerate(forms))
        src.write_text(".text\n" + body + "\n"
                       ".section .note.GNU-stack,\"\",@progbits\n")
        proc = subprocess.run(["gcc", "-shared", "-nostdlib", "-o", str(lib),
                               str(src)], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"assembling the corpus failed:\n"
                               f"{proc.stderr[:4000]}")
        self.lib = ctypes.CDLL(str(lib))

    def function(self, k: int) -> int:
        return ctypes.cast(getattr(self.lib, f"lbf_{k}"),
                           ctypes.c_void_p).value or 0

    def instruction(self, k: int) -> int:
        return ctypes.cast(getattr(self.lib, f"lbi_{k}"),
                           ctypes.c_void_p).value or 0


def run_form(arr: object, compiled: Compiled, k: int, i: int
             ) -> tuple[int, ...]:
    """Run form k on element i of `arr` (a LazyArray) in a guarded call;
    returns the comparable outputs (see module doc)."""
    form = compiled.forms[k]
    out = (ctypes.c_uint64 * 8)()
    addr = ctypes.addressof(out)
    h = arr.handle(i)                      # type: ignore[attr-defined]
    arr.call(compiled.function(k), i, addr)  # type: ignore[attr-defined]
    after = out[2] if form.overwrites_base else (out[2] - h) % (1 << 64)
    vec = tuple(out[4:8]) if form.dest != "f" else (out[4], out[5] & 0xFFFF)
    return (out[0], out[1], after) + vec


def forms_by_mnemonic(forms: Iterable[Form]) -> set[str]:
    return {f.insn.split()[0] for f in forms}
