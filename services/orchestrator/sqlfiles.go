package orchestrator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CreateFile implements Store.
func (s *SQLStore) CreateFile(ctx context.Context, f *File) error {
	if f.CreatedAt.IsZero() {
		f.CreatedAt = time.Now().UTC()
	}
	_, err := s.q.ExecContext(ctx, s.rb(`INSERT INTO orchestrator_files (id, tenant, owner, run_id, kind, name, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`), f.ID, f.Tenant, f.Owner, f.RunID, f.Kind, f.Name, nanos(f.CreatedAt))
	if err != nil {
		return fmt.Errorf("storing file: %w", err)
	}
	return nil
}

// AppendChunk implements Store.
func (s *SQLStore) AppendChunk(ctx context.Context, fileID string, seq int, data []byte) error {
	_, err := s.q.ExecContext(ctx, s.rb(`INSERT INTO orchestrator_file_chunks (file_id, seq, data) VALUES ($1, $2, $3)`),
		fileID, seq, data)
	if err != nil {
		return fmt.Errorf("storing file chunk: %w", err)
	}
	return nil
}

// CompleteFile implements Store.
func (s *SQLStore) CompleteFile(ctx context.Context, fileID string, size int64, sha string) error {
	return s.execOne(ctx, "completing file", `UPDATE orchestrator_files SET size_bytes = $1, sha256 = $2, complete = $3
		WHERE id = $4`, size, sha, true, fileID)
}

// DeleteFile implements Store.
func (s *SQLStore) DeleteFile(ctx context.Context, fileID string) error {
	return s.inTx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, s.rb(`DELETE FROM orchestrator_file_chunks WHERE file_id = $1`), fileID); err != nil {
			return fmt.Errorf("deleting file: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.rb(`DELETE FROM orchestrator_files WHERE id = $1`), fileID); err != nil {
			return fmt.Errorf("deleting file: %w", err)
		}
		return nil
	})
}

// GetFile implements Store.
func (s *SQLStore) GetFile(ctx context.Context, tenant, id string) (*File, error) {
	var f File
	var created int64
	err := s.q.QueryRowContext(ctx, s.rb(`SELECT id, name, size_bytes, sha256, tenant, owner, run_id, kind, created_at
		FROM orchestrator_files WHERE id = $1 AND tenant = $2 AND complete = $3`), id, tenant, true).
		Scan(&f.ID, &f.Name, &f.Size, &f.SHA256, &f.Tenant, &f.Owner, &f.RunID, &f.Kind, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading file: %w", err)
	}
	f.CreatedAt = fromNanos(created)
	return &f, nil
}

// ReadChunks implements Store. Each chunk is its own query, so a slow reader
// never holds a transaction or a connection open.
func (s *SQLStore) ReadChunks(ctx context.Context, fileID string, fn func([]byte) error) error {
	for seq := 0; ; seq++ {
		var data []byte
		err := s.q.QueryRowContext(ctx, s.rb(`SELECT data FROM orchestrator_file_chunks WHERE file_id = $1 AND seq = $2`),
			fileID, seq).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading file chunk %d: %w", seq, err)
		}
		if err := fn(data); err != nil {
			return err
		}
	}
}

// DeleteIncompleteFiles implements Store.
func (s *SQLStore) DeleteIncompleteFiles(ctx context.Context, before time.Time) (int, error) {
	rows, err := s.q.QueryContext(ctx, s.rb(`SELECT id FROM orchestrator_files WHERE complete = $1 AND created_at < $2`),
		false, nanos(before))
	if err != nil {
		return 0, fmt.Errorf("finding abandoned uploads: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if err := s.DeleteFile(ctx, id); err != nil {
			return 0, err
		}
	}
	return len(ids), rows.Err()
}
