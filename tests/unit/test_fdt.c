#include "test.h"
void test_fdt(void) {}
