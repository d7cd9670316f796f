package platform

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The fake behaves like the outside world: it shares no code with the
// agent. From internal/ it may import only the domain tables of
// internal/card (DESIGN: fakes import nothing from internal/ but card).
func TestImportsOnlyCard(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	main, _ := filepath.Glob("../*.go")
	for _, f := range append(files, main...) {
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "scanagent/internal/") && path != "scanagent/internal/card" {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}
