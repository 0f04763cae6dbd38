/**
 * Tier internals: the block-record codec ({@link io.kvslab.internal.tier.BlockRecords}) every
 * {@link io.kvslab.tier.BlockTier} stores, and the swap plumbing. Not exported.
 */
package io.kvslab.internal.tier;
