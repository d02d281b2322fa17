#include "test.h"
void test_uart(void) {}
