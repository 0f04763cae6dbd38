/**
 * picocli converters of element types shared by the {@code cli} commands and {@code serve}'s command, in a package
 * of their own so that {@code serve} depends on them without depending on {@code cli} (which registers serve's
 * commands: no package cycle).
 */
package io.kvslab.bench.cli.types;
