package io.kvslab.bench.fuzz;

/**
 * One generated input: deterministic in (campaign seed, case id).
 *
 * @param id                 case number within the campaign
 * @param target             what reads it
 * @param seed               name of the seed file it was mutated from
 * @param file               the snapshot, GGUF or llama2.c checkpoint bytes
 * @param tokenizer          the llama2.c tokenizer bytes ({@link FuzzTarget#LLAMA2C} only, else null)
 * @param mutation           what was done, one line
 * @param cutDuringRestore   snapshot cases: cut the file to this length after verification, while the restore is
 *                           staging blocks (a concurrent truncation); -1 for none
 */
record FuzzCase(long id, FuzzTarget target, String seed, byte[] file, byte[] tokenizer, String mutation,
                long cutDuringRestore) {
}
