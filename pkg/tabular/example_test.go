package tabular_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/airlockhq/airlock/pkg/tabular"
)

func ExampleProfile() {
	data := "\xEF\xBB\xBFregion;revenue;closed\nNorth;1200.50;2024-01-31\nSouth;;2024-02-29\n"
	ds, err := tabular.Profile(context.Background(), "sales.csv", strings.NewReader(data), int64(len(data)),
		tabular.Options{SampleRows: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := ds.Sheets[0]
	fmt.Printf("%s %s %q, %d rows\n", ds.Format, ds.Encoding, ds.Delimiter, s.RowCount)
	for _, c := range s.Columns {
		fmt.Printf("%s: %s, %d empty\n", c.Name, c.Type, c.EmptyCount)
	}
	fmt.Println(s.Samples)
	// Output:
	// csv utf-8-sig ";", 2 rows
	// region: text, 0 empty
	// revenue: decimal, 1 empty
	// closed: date, 0 empty
	// [[North 1200.50 2024-01-31]]
}
