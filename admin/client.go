package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// MaxResponseBytes bounds a document Client reads; a longer answer is an
// error rather than unbounded memory.
const MaxResponseBytes = 64 << 20

// ErrBadURL: the admin URL given to NewClient is not usable.
var ErrBadURL = errors.New("admin: bad admin URL")

// Client reads the JSON documents of an admin server (what enginekit ps and
// enginekit status print).
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a Client of the admin server at base: "http://HOST:PORT"
// or just "HOST:PORT". hc nil means http.DefaultClient; the ctx of each
// call bounds it.
func NewClient(base string, hc *http.Client) (*Client, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadURL, base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: %q: scheme %q (want http or https)", ErrBadURL, base, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: %q: no host", ErrBadURL, base)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: hc}, nil
}

// Processes reads /api/processes, narrowed by q (the zero ProcessQuery
// reads them all, by PID).
func (c *Client) Processes(ctx context.Context, q ProcessQuery) (Processes, error) {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/api/processes"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var doc Processes
	return doc, c.get(ctx, path, &doc)
}

// Process reads /api/process/{id}: id is a PID ("<node.5>"), its number, or
// a registered name.
func (c *Client) Process(ctx context.Context, id string) (Process, error) {
	var doc Process
	return doc, c.get(ctx, "/api/process/"+url.PathEscape(id), &doc)
}

// Tree reads /api/tree.
func (c *Client) Tree(ctx context.Context) (Trees, error) {
	var doc Trees
	return doc, c.get(ctx, "/api/tree", &doc)
}

// Connections reads /api/connections.
func (c *Client) Connections(ctx context.Context) (Connections, error) {
	var doc Connections
	return doc, c.get(ctx, "/api/connections", &doc)
}

// Stats reads /api/stats.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var doc Stats
	return doc, c.get(ctx, "/api/stats", &doc)
}

// Members reads /api/members (Cluster false when the node is not in a
// cluster).
func (c *Client) Members(ctx context.Context) (Members, error) {
	var doc Members
	return doc, c.get(ctx, "/api/members", &doc)
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("admin: reading %s: %w", path, err)
	}
	if len(body) > MaxResponseBytes {
		return fmt.Errorf("admin: %s: answer longer than %d bytes", path, MaxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin: %s: %s", path, e.Error)
		}
		return fmt.Errorf("admin: %s: %s", path, resp.Status)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("admin: %s: not an admin server's answer: %w", path, err)
	}
	return nil
}
