import CGLib
import Glibc

/// The order in which a GLib string-keyed hash table iterates `keys` after
/// they were inserted in that order and `removed` were taken out again.
///
/// QEMU's argument visitor keeps the members it has not visited yet in such a
/// table and names the first one it iterates as unexpected, so asking GLib
/// itself gives the reference's choice exactly.
func glibHashTableOrder(inserting keys: [String], removing removed: Set<String>) -> [String] {
    let table = g_hash_table_new(g_str_hash, g_str_equal)
    let cKeys = keys.map { strdup($0) }
    defer {
        g_hash_table_unref(table)
        cKeys.forEach { free($0) }
    }
    for key in cKeys { g_hash_table_insert(table, key, nil) }
    for key in removed { _ = key.withCString { g_hash_table_remove(table, $0) } }

    var order: [String] = []
    var iterator = GHashTableIter()
    g_hash_table_iter_init(&iterator, table)
    var key: gpointer?
    while g_hash_table_iter_next(&iterator, &key, nil) != 0 {
        order.append(String(cString: key!.assumingMemoryBound(to: CChar.self)))
    }
    return order
}
