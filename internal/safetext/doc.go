// Package safetext makes text that came from a peer fit to quote in an
// error or a log line: cut to a length without splitting a rune, and with
// invalid UTF-8 replaced. payload quotes a peer's type names with it and
// wire the reason of a GOAWAY.
package safetext
