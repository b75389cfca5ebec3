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
/* rur.accx_0 */
#define TFR_PIE_RUR(s) ((int32_t)(uint32_t)((uint64_t)(s).accx & 0xFFFFFFFFu))
#define TFR_PIE_INIT(s) memset(&(s), 0, sizeof(s))
#endif
#endif

#endif
