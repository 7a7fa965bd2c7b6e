package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"
)

// The passphrase prompt uses termios through package syscall, so that it
// needs no module beyond the standard library.

func getTermios(f *os.File) (syscall.Termios, error) {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	if errno != 0 {
		return t, errno
	}
	return t, nil
}

func setTermios(f *os.File, t *syscall.Termios) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCSETS, uintptr(unsafe.Pointer(t)))
	if errno != 0 {
		return errno
	}
	return nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := getTermios(f)
	return err == nil
}

// promptPassphrase writes prompt to w and reads one line from the terminal
// f with echo turned off.
func promptPassphrase(ctx context.Context, f *os.File, w io.Writer, prompt string) ([]byte, error) {
	old, err := getTermios(f)
	if err != nil {
		return nil, fmt.Errorf("prompting for the passphrase: %w", err)
	}
	quiet := old
	quiet.Lflag &^= syscall.ECHO
	quiet.Lflag |= syscall.ICANON | syscall.ISIG
	if err := setTermios(f, &quiet); err != nil {
		return nil, fmt.Errorf("prompting for the passphrase: %w", err)
	}
	defer func() {
		_ = setTermios(f, &old)
		fmt.Fprintln(w) // the user's Enter was not echoed
	}()
	fmt.Fprint(w, prompt)

	type line struct {
		b   []byte
		err error
	}
	got := make(chan line, 1)
	// A read from a terminal cannot be interrupted; on Ctrl-C (ctx) this
	// goroutine stays blocked until the process exits, which it is about to.
	go func() {
		b, err := readLine(f)
		got <- line{b, err}
	}()
	select {
	case l := <-got:
		if l.err != nil {
			clear(l.b)
			return nil, fmt.Errorf("reading the passphrase: %w", l.err)
		}
		return l.b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
