package node

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/enginekit/enginekit/keyholder"
)

// ErrWrongPassphrase is wrapped by Start's error when the passphrase does
// not open the key file.
var ErrWrongPassphrase = keyholder.ErrWrongPassphrase

// keyFile is what openKeys leaves for save: the passphrase and whether the
// file must be written.
type keyFile struct {
	path   string
	pass   []byte
	create bool
	added  []string
	kdf    keyholder.KDFParams
}

// openKeys sets n.kh from cfg.Keys and gives every engine an identity, in
// memory only: nothing is written until save.
func (n *Node) openKeys() (*keyFile, error) {
	k := n.cfg.Keys
	kf := &keyFile{path: k.File, kdf: k.KDF}
	switch {
	case k.Holder != nil:
		n.kh = k.Holder
	case k.File == "":
		kh, err := keyholder.New(keyholder.Config{})
		if err != nil {
			return nil, err
		}
		n.kh, n.ownKeys = kh, true
	default:
		_, err := os.Lstat(k.File)
		switch {
		case errors.Is(err, os.ErrNotExist):
			kf.create = true
		case err != nil:
			return nil, fmt.Errorf("node: key file: %w", err)
		}
		if kf.pass, err = k.Passphrase(kf.create); err != nil {
			return nil, err
		}
		var kh *keyholder.Keyholder
		if kf.create {
			kh, err = keyholder.New(keyholder.Config{})
		} else {
			kh, err = keyholder.Load(k.File, kf.pass)
		}
		if err != nil {
			clear(kf.pass)
			if errors.Is(err, keyholder.ErrWrongPassphrase) {
				return nil, fmt.Errorf("wrong passphrase for key file %s: %w", k.File, err)
			}
			return nil, err // keyholder's errors name the file and what is wrong
		}
		n.kh, n.ownKeys = kh, true
	}
	for _, e := range n.cfg.Engines {
		if _, ok := n.kh.Engine(e.Name); ok {
			continue
		}
		if _, err := n.kh.EnsureEngine(e.Name); err != nil {
			clear(kf.pass)
			if n.ownKeys {
				n.kh.Close()
			}
			return nil, fmt.Errorf("node: engine %s: %w", e.Name, err)
		}
		kf.added = append(kf.added, e.Name)
	}
	return kf, nil
}

// save writes the key file if it is new or gained engines, and forgets the
// passphrase.
func (kf *keyFile) save(n *Node) error {
	defer clear(kf.pass)
	if kf.path == "" || (!kf.create && len(kf.added) == 0) {
		return nil
	}
	if err := n.kh.SaveWith(kf.path, kf.pass, keyholder.SaveOptions{KDF: kf.kdf}); err != nil {
		if kf.create {
			return fmt.Errorf("creating key file: %w", err)
		}
		return fmt.Errorf("adding engines %s to the key file: %w", strings.Join(kf.added, ", "), err)
	}
	if kf.create {
		n.log.Info().Str("event", "keys").Str("file", kf.path).Msg("created the key file")
	} else {
		n.log.Info().Str("event", "keys").Str("file", kf.path).Strs("added", kf.added).Msg("added engine identities to the key file")
	}
	return nil
}
