// Command mkexamples writes the demo's input files, examples/sales.xlsx and
// examples/customers.csv: a year of orders of a small wholesaler, made up but
// shaped like the real thing, the same on every run (fixed seed).
//
//	go run ./examples/mkexamples [-dir examples]
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/xuri/excelize/v2"
)

type customer struct {
	id, name, region, segment, city, since string
}

var (
	regions = map[string][]string{
		"North": {"Leeds", "Manchester", "Newcastle", "York"},
		"South": {"Brighton", "Southampton", "Portsmouth", "Exeter"},
		"East":  {"Norwich", "Cambridge", "Ipswich", "Colchester"},
		"West":  {"Bristol", "Cardiff", "Bath", "Gloucester"},
	}
	regionOrder = []string{"North", "South", "East", "West"}
	first       = []string{"Harbour", "Oak", "Riverside", "Summit", "Bluebell", "Granite", "Kestrel", "Meadow", "Copper", "Lantern", "Willow", "Anchor", "Beacon", "Thistle", "Juniper"}
	second      = []string{"Bakery", "Cafe", "Deli", "Grocers", "Hotel", "Kitchen", "Market", "Bistro", "Foods", "Pantry"}
	segments    = []string{"Retail", "Hospitality", "Wholesale"}
	products    = []struct {
		name, category string
		price          float64
	}{
		{"Arabica beans 1kg", "Coffee", 18.50}, {"Espresso blend 1kg", "Coffee", 21.00}, {"Decaf beans 500g", "Coffee", 11.75},
		{"Breakfast tea 240 bags", "Tea", 9.40}, {"Green tea 100 bags", "Tea", 6.20}, {"Oat milk 1L x6", "Dairy alternatives", 10.80},
		{"Whole milk 2L x6", "Dairy", 8.90}, {"Butter croissant x12", "Bakery", 14.40}, {"Sourdough loaf", "Bakery", 3.60},
		{"Paper cups 12oz x1000", "Packaging", 42.00}, {"Compostable lids x1000", "Packaging", 27.50}, {"Cane sugar sticks x1000", "Sundries", 12.30},
	}
)

func main() {
	dir := flag.String("dir", "examples", "directory to write sales.xlsx and customers.csv into")
	flag.Parse()
	if err := run(*dir); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	rng := rand.New(rand.NewPCG(2026, 11))
	var customers []customer
	for i := 0; i < 120; i++ {
		region := regionOrder[i%len(regionOrder)]
		cities := regions[region]
		since := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(5*365))
		city := cities[rng.IntN(len(cities))]
		customers = append(customers, customer{
			id:      fmt.Sprintf("C%04d", 1001+i),
			name:    fmt.Sprintf("%s %s %s", first[rng.IntN(len(first))], second[rng.IntN(len(second))], city),
			region:  region,
			segment: segments[rng.IntN(len(segments))],
			city:    city,
			since:   since.Format("2006-01-02"),
		})
	}
	if err := writeCustomers(filepath.Join(dir, "customers.csv"), customers); err != nil {
		return err
	}
	return writeSales(filepath.Join(dir, "sales.xlsx"), customers, rng)
}

func writeCustomers(path string, customers []customer) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"customer_id", "name", "region", "segment", "city", "customer_since"})
	for _, c := range customers {
		_ = w.Write([]string{c.id, c.name, c.region, c.segment, c.city, c.since})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeSales(path string, customers []customer, rng *rand.Rand) error {
	x := excelize.NewFile()
	defer x.Close()
	const sheet = "Orders"
	if err := x.SetSheetName("Sheet1", sheet); err != nil {
		return err
	}
	header := []any{"order_id", "order_date", "customer_id", "region", "product", "category", "quantity", "unit_price", "discount", "revenue"}
	if err := x.SetSheetRow(sheet, "A1", &header); err != nil {
		return err
	}
	// Bigger customers order more often: weights follow a long tail.
	weights := make([]int, len(customers))
	total := 0
	for i := range customers {
		weights[i] = 1 + rng.IntN(10)*rng.IntN(4)
		total += weights[i]
	}
	dateStyle, err := x.NewStyle(&excelize.Style{NumFmt: 14})
	if err != nil {
		return err
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 2400; i++ {
		pick := rng.IntN(total)
		ci := 0
		for pick >= weights[ci] {
			pick -= weights[ci]
			ci++
		}
		c := customers[ci]
		p := products[rng.IntN(len(products))]
		qty := 1 + rng.IntN(24)
		discount := []float64{0, 0, 0, 0.05, 0.1}[rng.IntN(5)]
		revenue := float64(int(float64(qty)*p.price*(1-discount)*100+0.5)) / 100
		day := start.AddDate(0, 0, rng.IntN(365))
		row := []any{fmt.Sprintf("SO-%05d", 10001+i), day, c.id, c.region, p.name, p.category, qty, p.price, discount, revenue}
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := x.SetSheetRow(sheet, cell, &row); err != nil {
			return err
		}
		dcell, _ := excelize.CoordinatesToCellName(2, i+2)
		if err := x.SetCellStyle(sheet, dcell, dcell, dateStyle); err != nil {
			return err
		}
	}
	targets := "Targets"
	if _, err := x.NewSheet(targets); err != nil {
		return err
	}
	if err := x.SetSheetRow(targets, "A1", &[]any{"region", "quarter", "revenue_target"}); err != nil {
		return err
	}
	r := 2
	for _, region := range regionOrder {
		for q := 1; q <= 4; q++ {
			cell, _ := excelize.CoordinatesToCellName(1, r)
			if err := x.SetSheetRow(targets, cell, &[]any{region, fmt.Sprintf("2025-Q%d", q), 12000 + 500*q + rng.IntN(2000)}); err != nil {
				return err
			}
			r++
		}
	}
	if err := x.SaveAs(path); err != nil {
		return err
	}
	return os.Chmod(path, 0o644)
}
