package tokenstore

// SetPageSize makes Due read pages of n items, so tests exercise paging with a few items.
func SetPageSize(s *Store, n int) { s.pageSize = n }
