// Package tabularpb converts tabular profiles to their airlock.generator.v1
// wire form, so pkg/tabular itself stays free of generated code.
package tabularpb

import (
	"bytes"
	"context"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	"github.com/airlockhq/airlock/pkg/tabular"
)

// ProfileBytes profiles a file held in memory and returns its wire form;
// its signature fits a caller that keeps uploads as byte slices.
func ProfileBytes(ctx context.Context, name string, content []byte, opts tabular.Options) (*generatorv1.DatasetProfile, error) {
	ds, err := tabular.Profile(ctx, name, bytes.NewReader(content), int64(len(content)), opts)
	if err != nil {
		return nil, err
	}
	return ToProto(ds), nil
}

// ToProto returns the wire form of a dataset profile.
func ToProto(ds *tabular.Dataset) *generatorv1.DatasetProfile {
	if ds == nil {
		return nil
	}
	out := &generatorv1.DatasetProfile{
		Name:      ds.Name,
		Format:    formatToProto(ds.Format),
		SizeBytes: ds.SizeBytes,
		Encoding:  ds.Encoding,
		Delimiter: ds.Delimiter,
	}
	for _, s := range ds.Sheets {
		sp := &generatorv1.SheetProfile{Name: s.Name, RowCount: s.RowCount, Truncated: s.Truncated, HeaderRow: int32(s.HeaderRow)}
		for _, c := range s.Columns {
			sp.Columns = append(sp.Columns, &generatorv1.ColumnProfile{
				Name: c.Name, Type: TypeToProto(c.Type), EmptyCount: c.EmptyCount, DecimalComma: c.DecimalComma,
				DateFormat: c.DateFormat,
			})
		}
		for _, row := range s.Samples {
			sp.SampleRows = append(sp.SampleRows, &generatorv1.SampleRow{Values: row})
		}
		out.Sheets = append(out.Sheets, sp)
	}
	return out
}

// TypeToProto maps a column type to its enum value.
func TypeToProto(t tabular.ColumnType) generatorv1.ColumnType {
	switch t {
	case tabular.TypeInteger:
		return generatorv1.ColumnType_COLUMN_TYPE_INTEGER
	case tabular.TypeDecimal:
		return generatorv1.ColumnType_COLUMN_TYPE_DECIMAL
	case tabular.TypeDate:
		return generatorv1.ColumnType_COLUMN_TYPE_DATE
	case tabular.TypeBoolean:
		return generatorv1.ColumnType_COLUMN_TYPE_BOOLEAN
	case tabular.TypeText:
		return generatorv1.ColumnType_COLUMN_TYPE_TEXT
	default:
		return generatorv1.ColumnType_COLUMN_TYPE_EMPTY
	}
}

func formatToProto(f tabular.Format) generatorv1.DatasetFormat {
	switch f {
	case tabular.FormatCSV:
		return generatorv1.DatasetFormat_DATASET_FORMAT_CSV
	case tabular.FormatXLSX:
		return generatorv1.DatasetFormat_DATASET_FORMAT_XLSX
	default:
		return generatorv1.DatasetFormat_DATASET_FORMAT_UNSPECIFIED
	}
}
