/**
 * Storage tiers below native memory: {@link io.kvslab.tier.BlockTier} stores encoded block records by
 * {@link io.kvslab.tier.BlockKey}. Swapping a sequence out under memory pressure and sharing prefix blocks across
 * processes both go through this one interface.
 */
package io.kvslab.tier;
