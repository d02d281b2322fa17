/* array: the element count of a fixed-size array. */
#ifndef MICROVM_ARRAY_H
#define MICROVM_ARRAY_H

/* Number of elements of array a (an array, never a pointer). */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
