#include "test.h"
void test_bus(void) {}
