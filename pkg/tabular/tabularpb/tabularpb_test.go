package tabularpb

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	generatorv1 "github.com/airlockhq/airlock/gen/go/airlock/generator/v1"
	"github.com/airlockhq/airlock/pkg/tabular"
)

func TestToProto(t *testing.T) {
	t.Parallel()
	require.Nil(t, ToProto(nil))
	got := ToProto(&tabular.Dataset{
		Name: "a.csv", Format: tabular.FormatCSV, SizeBytes: 10, Encoding: "utf-8", Delimiter: ";",
		Sheets: []tabular.Sheet{{
			Columns:   []tabular.Column{{Name: "n", Type: tabular.TypeInteger, EmptyCount: 1}, {Name: "d", Type: tabular.TypeDate, DateFormat: "%d/%m/%Y"}, {Name: "p", Type: tabular.TypeDecimal, DecimalComma: true}},
			RowCount:  2,
			Samples:   [][]string{{"1", "2024-01-01"}},
			Truncated: true,
		}},
	})
	require.Equal(t, generatorv1.DatasetFormat_DATASET_FORMAT_CSV, got.GetFormat())
	require.Equal(t, ";", got.GetDelimiter())
	s := got.GetSheets()[0]
	require.True(t, s.GetTruncated())
	require.EqualValues(t, 2, s.GetRowCount())
	require.Equal(t, generatorv1.ColumnType_COLUMN_TYPE_INTEGER, s.GetColumns()[0].GetType())
	require.EqualValues(t, 1, s.GetColumns()[0].GetEmptyCount())
	require.Equal(t, generatorv1.ColumnType_COLUMN_TYPE_DATE, s.GetColumns()[1].GetType())
	require.True(t, s.GetColumns()[2].GetDecimalComma())
	require.Equal(t, "%d/%m/%Y", s.GetColumns()[1].GetDateFormat())
	require.False(t, s.GetColumns()[0].GetDecimalComma())
	require.Equal(t, []string{"1", "2024-01-01"}, s.GetSampleRows()[0].GetValues())
	for ct := tabular.TypeEmpty; ct <= tabular.TypeText; ct++ {
		require.NotEqual(t, generatorv1.ColumnType_COLUMN_TYPE_UNSPECIFIED, TypeToProto(ct), ct.String())
	}
}

func TestProfileBytes(t *testing.T) {
	t.Parallel()
	p, err := ProfileBytes(context.Background(), "a.csv", []byte("x;y\n1;2.5\n"), tabular.Options{SampleRows: 1})
	require.NoError(t, err)
	require.Equal(t, "a.csv", p.GetName())
	require.Equal(t, ";", p.GetDelimiter())
	require.Equal(t, generatorv1.ColumnType_COLUMN_TYPE_DECIMAL, p.GetSheets()[0].GetColumns()[1].GetType())
	require.Len(t, p.GetSheets()[0].GetSampleRows(), 1)

	_, err = ProfileBytes(context.Background(), "bad.xlsx", []byte("not a zip"), tabular.Options{})
	require.ErrorIs(t, err, tabular.ErrCorrupt)
}
