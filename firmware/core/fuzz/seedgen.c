/* Writes the fuzz seed corpus: valid blobs of a few shapes plus some broken ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_builder.h"

static int write_seed(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[1024];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n) {
    fprintf(stderr, "seedgen: cannot write %s\n", path);
    return 1;
  }
  return fclose(f) != 0;
}

int main(int argc, char **argv) {
  static uint8_t buf[1 << 20];
  tfb_spec specs[6];
  int s, rc = 0;
  if (argc != 2) {
    fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  specs[0] = tfb_small_spec();
  memset(&specs[1], 0, sizeof specs[1]);
  specs[1].stem_cout = 4; /* stem + head only */
  memset(&specs[2], 0, sizeof specs[2]);
  specs[2].stem_cout = 2;
  specs[2].num_blocks = 3;
  specs[2].blocks[0].type = 2; specs[2].blocks[0].hidden = 1;
  specs[2].blocks[1].type = 1; specs[2].blocks[1].cin = 2; specs[2].blocks[1].cout = 2; specs[2].blocks[1].stride = 2;
  specs[2].blocks[2].type = 1; specs[2].blocks[2].cin = 2; specs[2].blocks[2].cout = 3; specs[2].blocks[2].stride = 2;
  /* a repeat pass (format flag 2): block 1 runs the weights of block 0 */
  memset(&specs[3], 0, sizeof specs[3]);
  specs[3].stem_cout = 3;
  specs[3].num_blocks = 2;
  specs[3].blocks[0].type = 1; specs[3].blocks[0].cin = 3; specs[3].blocks[0].cout = 3; specs[3].blocks[0].stride = 1;
  specs[3].blocks[1] = specs[3].blocks[0];
  specs[3].blocks[1].shared = 1; specs[3].blocks[1].source = 0;
  /* an int8 stem (format version 2), 5 channels: weights followed by padding */
  specs[4] = specs[2];
  specs[4].stem_int8 = 1;
  specs[4].stem_cout = 5;
  specs[4].blocks[1].cin = 5;
  /* a grid head (format version 3): 4 x 4 regions of the last 12x12 plane, 3 values each */
  specs[5] = tfb_small_spec();
  specs[5].head_grid = 4;
  specs[5].head_k = 3;
  for (s = 0; s < 6; s++) {
    char name[64];
    size_t n = tfb_build(buf, sizeof buf, &specs[s], 100u + (uint32_t)s);
    snprintf(name, sizeof name, "valid-%d.tfer", s);
    rc |= write_seed(argv[1], name, buf, n);
    snprintf(name, sizeof name, "truncated-%d.tfer", s);
    rc |= write_seed(argv[1], name, buf, n / 2);
    buf[n / 3] ^= 0x40;
    snprintf(name, sizeof name, "badcrc-%d.tfer", s);
    rc |= write_seed(argv[1], name, buf, n);
  }
  return rc;
}
