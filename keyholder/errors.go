package keyholder

import "errors"

// Errors returned by this package. Match them with errors.Is; the returned
// errors often wrap them with details.
var (
	// ErrBadAddress reports text that is not the String form of an Address.
	ErrBadAddress = errors.New("keyholder: bad address")
	// ErrBadName reports an engine name that is empty, longer than
	// MaxNameLen bytes, not valid UTF-8 or contains control characters.
	ErrBadName = errors.New("keyholder: bad engine name")
	// ErrDuplicateEngine reports that NewEngine was given a name already in use.
	ErrDuplicateEngine = errors.New("keyholder: engine name already taken")
	// ErrNoEngine reports that no local engine has the given name.
	ErrNoEngine = errors.New("keyholder: no such engine")
	// ErrNotOurs reports a request to sign or MAC for an address whose
	// private key this keyholder does not hold.
	ErrNotOurs = errors.New("keyholder: not one of our keys")
	// ErrReservedMessage reports a message that Sign refuses because it could
	// be mistaken for one of the keyholder's own statements (see Sign).
	ErrReservedMessage = errors.New("keyholder: message starts with a reserved prefix")
	// ErrClosed reports use of a keyholder after Close.
	ErrClosed = errors.New("keyholder: closed")
	// ErrBadChannelSecret reports a channel secret shorter than MinChannelSecret.
	ErrBadChannelSecret = errors.New("keyholder: channel secret too short")
	// ErrBadCertificate reports a peer certificate that does not carry an
	// ed25519 router key.
	ErrBadCertificate = errors.New("keyholder: certificate does not carry an ed25519 router key")
	// ErrEmptyPassphrase reports an empty passphrase given to Save or Load.
	ErrEmptyPassphrase = errors.New("keyholder: empty passphrase")
	// ErrWrongPassphrase reports that the passphrase does not open the key file.
	ErrWrongPassphrase = errors.New("keyholder: wrong passphrase for key file")
	// ErrCorruptKeyFile reports a key file that is truncated, damaged, of an
	// unknown format or version, or carries unacceptable parameters. The
	// wrapping error says what is wrong.
	ErrCorruptKeyFile = errors.New("keyholder: corrupt key file")
	// ErrInsecureKeyFile reports a key file whose permissions let the group or
	// others access it; Load refuses it, as OpenSSH refuses such private keys.
	ErrInsecureKeyFile = errors.New("keyholder: key file is accessible by group or others (chmod 600 it)")
	// ErrBadKDFParams reports argon2id parameters outside the accepted ranges
	// (see KDFParams), whether given to SaveWith or read from a key file.
	ErrBadKDFParams = errors.New("keyholder: argon2id parameters out of range")
)
