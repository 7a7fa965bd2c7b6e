// Package atomicfile replaces a file's contents so that a reader, or the
// file system after a crash, sees either the old contents or the new ones,
// never a mix: the key files of keyholder and the files of cluster are
// written with it.
package atomicfile
