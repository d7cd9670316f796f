// Command fakescanner needs a pseudo-terminal and runs on Linux and macOS
// only; on Windows use a virtual COM pair (com0com) and type into one end.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "fakescanner: not supported on Windows (it needs a pseudo-terminal)")
	os.Exit(1)
}
