/* The detector's reference path (detect.c without TFA_DET_INT8_DOT), its public functions
 * renamed *_ref, linked beside the int8 path for tests/detect_test.cc's DetectTwin test. */
#undef TFA_DET_INT8_DOT
#undef TFA_DET_PIE
#define tfa_detect_defaults tfa_detect_defaults_ref
#define tfa_resize_area tfa_resize_area_ref
#define tfa_detect tfa_detect_ref
#define tfa_detect_frame tfa_detect_frame_ref
#include "../../../app/src/detect.c"
