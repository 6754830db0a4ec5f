package redistest

import (
	"strings"
	"testing"
)

func TestStartServesPing(t *testing.T) {
	url := Start(t)
	socket, ok := strings.CutPrefix(url, "unix://")
	if !ok {
		t.Fatalf("url = %q", url)
	}
	if err := ping(socket); err != nil {
		t.Fatal(err)
	}
}
