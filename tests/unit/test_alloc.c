#include "test.h"
void test_alloc(void) {}
