/* The instructions sigsegv-redirect may re-execute against a redirected
 * register: an allowlist of forms known to only READ their one memory
 * operand.  Anything not listed here is refused, whatever Capstone's
 * per-operand access flags say (they miss writes: cmpxchg, movnti, vector
 * stores, pextrq, stmxcsr, fnstcw, rol on memory...).
 *
 * A form is an instruction id, the number of operands Capstone lists, and
 * where the memory operand sits among them (AT&T order: sources first,
 * destination last).  The kind says which general-purpose register the
 * instruction writes; it is this table, not Capstone's register lists,
 * that decides whether the register holding a handle may be put back
 * after the instruction:
 *   LB_RF_READ   writes no general-purpose register (compares, tests,
 *                loads into vector or x87 registers); every GPR operand
 *                is read;
 *   LB_RF_WRITE  the last operand is a GPR written without being read
 *                (mov, movzx, ...); the other register operands are read;
 *   LB_RF_UPDATE the last operand is a GPR read and written (add, cmov).
 * Flags: LB_RF_IMM0, operand 0 must be an immediate (bt $k, m: with a
 * register bit offset bt reads outside its operand).
 *
 * Adding a form is one row.  The read corpus in the tests runs every row
 * against real handles and checks the result against eager memory. */
#include "lb_core.h"

#include <capstone/capstone.h>

#define R(id, nops, mem, kind) {X86_INS_##id, nops, mem, LB_RF_##kind, 0}
#define RI(id, nops, mem, kind) {X86_INS_##id, nops, mem, LB_RF_##kind, \
                                 LB_RF_IMM0}

const struct lb_read_form lb_read_forms[] = {
    /* general-purpose loads: mem, reg */
    R(MOV, 2, 0, WRITE),
    R(MOVZX, 2, 0, WRITE),
    R(MOVSX, 2, 0, WRITE),
    R(MOVSXD, 2, 0, WRITE),
    R(MOVBE, 2, 0, WRITE),
    R(POPCNT, 2, 0, WRITE),
    R(LZCNT, 2, 0, WRITE),
    R(TZCNT, 2, 0, WRITE),
    R(BLSI, 2, 0, WRITE),
    R(BLSMSK, 2, 0, WRITE),
    R(BLSR, 2, 0, WRITE),
    R(CVTSD2SI, 2, 0, WRITE),
    R(CVTSS2SI, 2, 0, WRITE),
    R(CVTTSD2SI, 2, 0, WRITE),
    R(CVTTSS2SI, 2, 0, WRITE),
    R(VCVTSD2SI, 2, 0, WRITE),
    R(VCVTTSD2SI, 2, 0, WRITE),
    /* three operands: imm/reg, mem, reg  or  mem, reg, reg */
    R(IMUL, 3, 1, WRITE),
    R(RORX, 3, 1, WRITE),
    R(SHLX, 3, 1, WRITE),
    R(SARX, 3, 1, WRITE),
    R(SHRX, 3, 1, WRITE),
    R(BEXTR, 3, 1, WRITE),
    R(BZHI, 3, 1, WRITE),
    R(PDEP, 3, 0, WRITE),
    R(PEXT, 3, 0, WRITE),
    R(ANDN, 3, 0, WRITE),
    /* read-modify a register: mem, reg */
    R(ADD, 2, 0, UPDATE),
    R(OR, 2, 0, UPDATE),
    R(ADC, 2, 0, UPDATE),
    R(SBB, 2, 0, UPDATE),
    R(AND, 2, 0, UPDATE),
    R(SUB, 2, 0, UPDATE),
    R(XOR, 2, 0, UPDATE),
    R(IMUL, 2, 0, UPDATE),
    R(CRC32, 2, 0, UPDATE),
    R(CMOVA, 2, 0, UPDATE),
    R(CMOVAE, 2, 0, UPDATE),
    R(CMOVB, 2, 0, UPDATE),
    R(CMOVBE, 2, 0, UPDATE),
    R(CMOVE, 2, 0, UPDATE),
    R(CMOVG, 2, 0, UPDATE),
    R(CMOVGE, 2, 0, UPDATE),
    R(CMOVL, 2, 0, UPDATE),
    R(CMOVLE, 2, 0, UPDATE),
    R(CMOVNE, 2, 0, UPDATE),
    R(CMOVNO, 2, 0, UPDATE),
    R(CMOVNP, 2, 0, UPDATE),
    R(CMOVNS, 2, 0, UPDATE),
    R(CMOVO, 2, 0, UPDATE),
    R(CMOVP, 2, 0, UPDATE),
    R(CMOVS, 2, 0, UPDATE),
    /* compares and tests: flags only, memory on either side */
    R(CMP, 2, 0, READ),
    R(CMP, 2, 1, READ),
    R(TEST, 2, 1, READ),
    RI(BT, 2, 1, READ),
    /* SSE loads and arithmetic into xmm registers */
    R(MOVSD, 2, 0, READ),
    R(MOVSS, 2, 0, READ),
    R(MOVAPS, 2, 0, READ),
    R(MOVUPS, 2, 0, READ),
    R(MOVAPD, 2, 0, READ),
    R(MOVUPD, 2, 0, READ),
    R(MOVDQA, 2, 0, READ),
    R(MOVDQU, 2, 0, READ),
    R(MOVQ, 2, 0, READ),
    R(MOVD, 2, 0, READ),
    R(MOVHPS, 2, 0, READ),
    R(MOVLPS, 2, 0, READ),
    R(MOVHPD, 2, 0, READ),
    R(MOVLPD, 2, 0, READ),
    R(LDDQU, 2, 0, READ),
    R(MOVDDUP, 2, 0, READ),
    R(MOVSHDUP, 2, 0, READ),
    R(MOVSLDUP, 2, 0, READ),
    R(PMOVZXBD, 2, 0, READ),
    R(PMOVZXDQ, 2, 0, READ),
    R(PMOVSXBW, 2, 0, READ),
    R(PMOVSXDQ, 2, 0, READ),
    R(ADDPD, 2, 0, READ),
    R(ADDPS, 2, 0, READ),
    R(ADDSD, 2, 0, READ),
    R(ADDSS, 2, 0, READ),
    R(SUBPD, 2, 0, READ),
    R(SUBSD, 2, 0, READ),
    R(MULPD, 2, 0, READ),
    R(MULSD, 2, 0, READ),
    R(DIVPD, 2, 0, READ),
    R(DIVSD, 2, 0, READ),
    R(MINPD, 2, 0, READ),
    R(MAXPD, 2, 0, READ),
    R(SQRTPD, 2, 0, READ),
    R(SQRTSD, 2, 0, READ),
    R(ANDPD, 2, 0, READ),
    R(ANDPS, 2, 0, READ),
    R(ORPS, 2, 0, READ),
    R(XORPS, 2, 0, READ),
    R(PADDB, 2, 0, READ),
    R(PADDW, 2, 0, READ),
    R(PADDD, 2, 0, READ),
    R(PADDQ, 2, 0, READ),
    R(PSUBQ, 2, 0, READ),
    R(PAND, 2, 0, READ),
    R(PANDN, 2, 0, READ),
    R(POR, 2, 0, READ),
    R(PXOR, 2, 0, READ),
    R(PCMPEQB, 2, 0, READ),
    R(PCMPEQQ, 2, 0, READ),
    R(PCMPGTD, 2, 0, READ),
    R(PTEST, 2, 0, READ),
    R(UCOMISD, 2, 0, READ),
    R(UCOMISS, 2, 0, READ),
    R(COMISD, 2, 0, READ),
    R(COMISS, 2, 0, READ),
    R(CVTSI2SD, 2, 0, READ),
    R(CVTSI2SS, 2, 0, READ),
    R(CVTDQ2PD, 2, 0, READ),
    R(CVTPS2PD, 2, 0, READ),
    R(PSHUFD, 3, 1, READ),
    R(PINSRB, 3, 1, READ),
    R(PINSRW, 3, 1, READ),
    R(PINSRD, 3, 1, READ),
    R(PINSRQ, 3, 1, READ),
    R(INSERTPS, 3, 1, READ),
    /* AVX loads and arithmetic into xmm/ymm registers */
    R(VMOVDQU, 2, 0, READ),
    R(VMOVDQA, 2, 0, READ),
    R(VMOVUPS, 2, 0, READ),
    R(VMOVUPD, 2, 0, READ),
    R(VMOVAPS, 2, 0, READ),
    R(VMOVAPD, 2, 0, READ),
    R(VMOVSD, 2, 0, READ),
    R(VMOVSS, 2, 0, READ),
    R(VMOVQ, 2, 0, READ),
    R(VMOVD, 2, 0, READ),
    R(VLDDQU, 2, 0, READ),
    R(VMOVDDUP, 2, 0, READ),
    R(VBROADCASTSS, 2, 0, READ),
    R(VBROADCASTSD, 2, 0, READ),
    R(VBROADCASTF128, 2, 0, READ),
    R(VBROADCASTI128, 2, 0, READ),
    R(VPBROADCASTB, 2, 0, READ),
    R(VPBROADCASTW, 2, 0, READ),
    R(VPBROADCASTD, 2, 0, READ),
    R(VPBROADCASTQ, 2, 0, READ),
    R(VPMOVZXBD, 2, 0, READ),
    R(VPMOVZXDQ, 2, 0, READ),
    R(VPTEST, 2, 0, READ),
    R(VUCOMISD, 2, 0, READ),
    R(VADDPD, 3, 0, READ),
    R(VADDPS, 3, 0, READ),
    R(VADDSD, 3, 0, READ),
    R(VMULPD, 3, 0, READ),
    R(VPADDQ, 3, 0, READ),
    R(VPADDD, 3, 0, READ),
    R(VPAND, 3, 0, READ),
    R(VPOR, 3, 0, READ),
    R(VPXOR, 3, 0, READ),
    R(VPCMPEQB, 3, 0, READ),
    R(VPCMPEQQ, 3, 0, READ),
    R(VPMINUB, 3, 0, READ),
    R(VPMAXSD, 3, 0, READ),
    R(VFMADD231PD, 3, 0, READ),
    R(VPMASKMOVQ, 3, 0, READ),
    R(VPMASKMOVD, 3, 0, READ),
    R(VMASKMOVPS, 3, 0, READ),
    R(VMASKMOVPD, 3, 0, READ),
    R(VCVTSI2SD, 3, 0, READ),
    R(VPERMQ, 3, 1, READ),
    R(VPSHUFD, 3, 1, READ),
    R(VPINSRQ, 4, 1, READ),
    R(VPINSRD, 4, 1, READ),
    R(VINSERTF128, 4, 1, READ),
    R(VINSERTI128, 4, 1, READ),
    /* x87 loads and arithmetic on st(0) */
    R(FLD, 1, 0, READ),
    R(FILD, 1, 0, READ),
    R(FADD, 1, 0, READ),
    R(FMUL, 1, 0, READ),
    R(FSUB, 1, 0, READ),
    R(FSUBR, 1, 0, READ),
    R(FDIV, 1, 0, READ),
    R(FDIVR, 1, 0, READ),
    R(FIADD, 1, 0, READ),
    R(FIMUL, 1, 0, READ),
    R(FCOM, 1, 0, READ),
    R(FCOMP, 1, 0, READ),
};

const int lb_read_form_count =
    (int)(sizeof lb_read_forms / sizeof lb_read_forms[0]);

const struct lb_read_form *lb_read_form_find(unsigned id, int nops, int mem)
{
    for (int k = 0; k < lb_read_form_count; k++) {
        const struct lb_read_form *f = &lb_read_forms[k];
        if (f->id == id && f->nops == nops && f->mem == mem)
            return f;
    }
    return NULL;
}
