#ifndef HEARTH_CCRC32C_H
#define HEARTH_CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Nonzero when this CPU has a CRC-32C instruction Hearth uses (x86-64 with SSE 4.2).
int hearth_crc32c_hardware(void);

/// Updates the raw (not inverted) CRC-32C register `crc` with `count` bytes, using the CPU's
/// instruction. Call only when `hearth_crc32c_hardware()` is nonzero.
uint32_t hearth_crc32c_update(uint32_t crc, const void *bytes, size_t count);

#endif
