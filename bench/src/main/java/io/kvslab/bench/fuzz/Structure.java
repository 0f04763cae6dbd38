package io.kvslab.bench.fuzz;

import java.util.List;

/**
 * A valid seed file taken apart: its bytes, its integer fields, the groups of fields a reader multiplies together
 * (the mutator makes their products overflow) and the groups of offsets that must not alias (the mutator makes them
 * alias and overlap).
 *
 * @param name          the seed's name, for case descriptions
 * @param bytes         the seed file
 * @param fields        every integer field the parser found
 * @param products      fields multiplied into one size (a tensor's dims, tokensPerBlock x headDim ...)
 * @param offsetGroups  offsets of distinct objects (tensors, blocks)
 * @param alignment     the alignment offsets of the format keep (1 when none)
 */
record Structure(String name, byte[] bytes, List<Field> fields, List<List<Field>> products,
                 List<List<Field>> offsetGroups, int alignment) {
}
