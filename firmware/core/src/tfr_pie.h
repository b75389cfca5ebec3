/*
 * The ESP32-S3's PIE state as the core's PIE code uses it, and its portable twin (TFR_USE_INT8_DOT
 * without TFR_USE_PIE: what the host builds and tests).
 *
 * ESP32-S3 PIE. Pointers: vectors 16-byte aligned, ACCX slots 8-byte aligned (PIE loads and
 * stores drop the low address bits). ee.vmulas.s8.accx qx, qy adds the 16 signed byte products
 * qx . qy to ACCX (40 bits, saturating); its .ld.{ip,xp} qu, as, inc forms then load qu = [as] and
 * add inc (an immediate, or a register for .xp) to as; the products read qx as it was before the
 * load, so qu may be qx. Each loaded register is read two instructions later (the PIE load-use
 * distance: no interlock). The q registers and ACCX are invisible to GCC and live from one asm
 * statement to the next.
 */
#ifndef TINYFER_PIE_H
#define TINYFER_PIE_H
#include <stdint.h>
#include <string.h>

#include "tfr_ops.h"

#if defined(TFR_USE_INT8_DOT)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the byte path reads a conv as the low word of its little-endian ACCX slot"
#endif
#if defined(TFR_USE_PIE)
typedef int tfr_pie; /* nothing: the state is q0..q7 and ACCX */
#define TFR_PIE_INIT(s) ((s) = 0, (void)(s))
#else
/* Portable twin: the registers and the memory accesses of the PIE code, instruction by
 * instruction (a load copies its 16 bytes from the address with the low bits dropped; ACCX is 40
 * bits wide, saturating, stored zero-extended to 8 bytes). */
typedef struct {
  int8_t q[8][16];
  int64_t accx;
} tfr_pie;
#define TFR_PIE_ACCX_MAX ((INT64_C(1) << 39) - 1)
#define TFR_PIE_ALIGN(p, n) ((const void *)((uintptr_t)(const void *)(p) & ~(uintptr_t)((n) - 1)))
/* ee.vld.128.ip qu, p, inc */
TFR_KERNEL void tfr_pie_vld(tfr_pie *s, int u, const int8_t **p, int inc) {
  memcpy(s->q[u], TFR_PIE_ALIGN(*p, 16), 16);
  *p += inc;
}
/* ee.vmulas.s8.accx qx, qy */
TFR_KERNEL void tfr_pie_vmulas(tfr_pie *s, int x, int y) {
  int64_t sum = s->accx;
  int i;
  for (i = 0; i < 16; i++) sum += s->q[x][i] * s->q[y][i];
  s->accx = sum > TFR_PIE_ACCX_MAX ? TFR_PIE_ACCX_MAX : sum < -TFR_PIE_ACCX_MAX - 1 ? -TFR_PIE_ACCX_MAX - 1 : sum;
}
/* ee.vmulas.s8.accx.ld.{ip,xp} qu, p, inc, qx, qy: the products of the registers before the load */
TFR_KERNEL void tfr_pie_mac(tfr_pie *s, int u, const int8_t **p, int inc, int x, int y) {
  tfr_pie_vmulas(s, x, y);
  tfr_pie_vld(s, u, p, inc);
}
/* ee.ld.accx.ip x, inc: bytes 0..4 of the little-endian slot, bit 39 the sign */
TFR_KERNEL void tfr_pie_ldx(tfr_pie *s, int32_t **x, int inc) {
  uint8_t b[8];
  uint64_t v = 0;
  int i;
  memcpy(b, TFR_PIE_ALIGN(*x, 8), 8);
  for (i = 4; i >= 0; i--) v = v << 8 | b[i];
  s->accx = (int64_t)(v ^ (UINT64_C(1) << 39)) - (INT64_C(1) << 39);
  *x += inc / 4;
}
/* ee.st.accx.ip x, 8 */
TFR_KERNEL void tfr_pie_stx(const tfr_pie *s, int32_t **x) {
  const uint64_t v = (uint64_t)s->accx & ((UINT64_C(1) << 40) - 1);
  uint8_t b[8];
  int i;
  for (i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
  memcpy((void *)(uintptr_t)TFR_PIE_ALIGN(*x, 8), b, 8);
  *x += 2;
}
/* The vector steps of the binarize (op_binarize.c) and the weight expansion (op_binary_conv.c).
 * q registers as four int32 lanes (little-endian): */
TFR_KERNEL void tfr_pie_get32(const tfr_pie *s, int r, int32_t l[4]) { memcpy(l, s->q[r], 16); }
TFR_KERNEL void tfr_pie_put32(tfr_pie *s, int r, const int32_t l[4]) { memcpy(s->q[r], l, 16); }
/* ee.vld.128.{ip,xp} qu, p, inc on a float pointer (inc in bytes) */
TFR_KERNEL void tfr_pie_vldf(tfr_pie *s, int u, const float **p, int inc) {
  memcpy(s->q[u], TFR_PIE_ALIGN(*p, 16), 16);
  *p = (const float *)(const void *)((const uint8_t *)(const void *)*p + inc);
}
/* ee.vsr.32 qa, qs: arithmetic shift right by SAR (0..31) */
TFR_KERNEL void tfr_pie_vsr32(tfr_pie *s, int a, int x, int sar) {
  int32_t l[4];
  int i;
  tfr_pie_get32(s, x, l);
  for (i = 0; i < 4; i++) l[i] = l[i] < 0 ? (int32_t)~(~(uint32_t)l[i] >> sar) : (int32_t)((uint32_t)l[i] >> sar);
  tfr_pie_put32(s, a, l);
}
/* ee.andq / ee.orq / ee.xorq qa, qx, qy (op '&', '|', '^') */
TFR_KERNEL void tfr_pie_logic(tfr_pie *s, int a, int x, int y, char op) {
  int i;
  for (i = 0; i < 16; i++) {
    const uint8_t u = (uint8_t)s->q[x][i], v = (uint8_t)s->q[y][i];
    s->q[a][i] = (int8_t)(op == '&' ? u & v : op == '|' ? u | v : u ^ v);
  }
}
/* ee.vcmp.lt.s32 / ee.vcmp.gt.s32 qa, qx, qy (gt 0 / 1): all ones where true, else 0 */
TFR_KERNEL void tfr_pie_vcmp32(tfr_pie *s, int a, int x, int y, int gt) {
  int32_t l[4], m[4];
  int i;
  tfr_pie_get32(s, x, l);
  tfr_pie_get32(s, y, m);
  for (i = 0; i < 4; i++) l[i] = (gt ? l[i] > m[i] : l[i] < m[i]) ? -1 : 0;
  tfr_pie_put32(s, a, l);
}
/* ee.vcmp.eq.s8 qa, qx, qy: 0xFF where the bytes are equal, else 0 */
TFR_KERNEL void tfr_pie_vcmpeq8(tfr_pie *s, int a, int x, int y) {
  int i;
  for (i = 0; i < 16; i++) s->q[a][i] = (int8_t)(s->q[x][i] == s->q[y][i] ? -1 : 0);
}
/* ee.vunzip.8 / .16 / .32 qs0, qs1 (n = 1 / 2 / 4 bytes an element): qs0 = the even elements of
 * qs0 then of qs1, qs1 = the odd ones (ESP32-S3 TRM, EE.VUNZIP.8 / .16; .32 alike) */
TFR_KERNEL void tfr_pie_vunzip(tfr_pie *s, int x, int y, int n) {
  int8_t lo[16], hi[16];
  int i, j;
  for (i = 0; i < 8 / n; i++)
    for (j = 0; j < n; j++) {
      lo[i * n + j] = s->q[x][2 * i * n + j];
      lo[8 + i * n + j] = s->q[y][2 * i * n + j];
      hi[i * n + j] = s->q[x][(2 * i + 1) * n + j];
      hi[8 + i * n + j] = s->q[y][(2 * i + 1) * n + j];
    }
  memcpy(s->q[x], lo, 16);
  memcpy(s->q[y], hi, 16);
}
/* ee.vldbc.8.ip qu, p, 1: the byte at p in all 16 lanes */
TFR_KERNEL void tfr_pie_vldbc8(tfr_pie *s, int u, const uint8_t **p) {
  memset(s->q[u], (int)**p, 16);
  *p += 1;
}
/* ee.vst.128.ip qv, p, 16 (low 4 address bits dropped) */
TFR_KERNEL void tfr_pie_vst128(const tfr_pie *s, int v, int8_t **p) {
  memcpy((void *)(uintptr_t)TFR_PIE_ALIGN(*p, 16), s->q[v], 16);
  *p += 16;
}
/* ee.vst.l.64.xp qv, p, inc: the low 8 bytes to p (low 3 address bits dropped), p += inc */
TFR_KERNEL void tfr_pie_vstl64(const tfr_pie *s, int v, int8_t **p, int inc) {
  memcpy((void *)(uintptr_t)TFR_PIE_ALIGN(*p, 8), s->q[v], 8);
  *p += inc;
}
/* rur.accx_0 */
#define TFR_PIE_RUR(s) ((int32_t)(uint32_t)((uint64_t)(s).accx & 0xFFFFFFFFu))
#define TFR_PIE_INIT(s) memset(&(s), 0, sizeof(s))
#endif
#endif

#endif
