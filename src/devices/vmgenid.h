/* vmgenid: the VM generation ID, changed at every restore so that each clone reseeds its RNG. */
#ifndef MICROVM_VMGENID_H
#define MICROVM_VMGENID_H

#include "device.h"

#define VMGENID_SIZE 16 /* bytes of the ID */

extern const struct device_ops vmgenid_ops;

#endif
