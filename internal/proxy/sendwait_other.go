//go:build !unix

package proxy

import (
	"bufio"
	"net"
)

// sendWait has no raw access to a socket here: the request is flushed
// before the response is read, as net.Conn allows.
type sendWait struct{ armed bool }

func (*sendWait) init(net.Conn, *bufio.Writer) {}

func (*sendWait) arm() bool { return false }

func (*sendWait) read([]byte) (int, error) { panic("proxy: sendWait.read without arm") }
