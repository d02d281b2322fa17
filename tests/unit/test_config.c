#include "test.h"
void test_config(void) {}
