//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
	"os"
)

// Prompting without echo is implemented for Linux only; elsewhere the
// passphrase comes from $ENGINEKIT_PASSPHRASE or --passphrase-file.

func isTerminal(*os.File) bool { return false }

func promptPassphrase(context.Context, *os.File, io.Writer, string) ([]byte, error) {
	return nil, errors.New("passphrase prompt not supported on this system")
}
