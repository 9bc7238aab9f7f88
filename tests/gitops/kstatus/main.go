// Command kstatus computes what Flux concludes about objects: the kstatus library
// (sigs.k8s.io/cli-utils/pkg/kstatus/status, the one Flux's health checks use) run on each object.
// Reads one JSON object per line on stdin, writes one JSON line per object:
// {"status": "Current|InProgress|Failed|Terminating|NotFound|Unknown", "message": "..."}.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var object map[string]any
		// apimachinery's decoder keeps whole numbers int64, as objects from the API have them.
		if err := utiljson.Unmarshal(in.Bytes(), &object); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: not a JSON object: %v\n", err)
			os.Exit(2)
		}
		result, err := status.Compute(&unstructured.Unstructured{Object: object})
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
			os.Exit(1)
		}
		if err := out.Encode(verdict{Status: result.Status.String(), Message: result.Message}); err != nil {
			os.Exit(1)
		}
	}
}
