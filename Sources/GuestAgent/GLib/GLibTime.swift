import CGLib

/// GLib's clock and time zones, as qemu-ga reads them.
enum GLibTime {
    /// `g_get_real_time`: microseconds since the Unix epoch.
    static func realTimeMicroseconds() -> Int64 { Int64(g_get_real_time()) }

    /// The local time zone (`TZ`, else /etc/localtime) in the interval that
    /// contains this moment: its offset east of UTC in seconds and its
    /// abbreviation, if it has one.
    static func localZoneNow() -> (offset: Int32, abbreviation: String?)? {
        guard let zone = g_time_zone_new_local() else { return nil }
        defer { g_time_zone_unref(zone) }
        let interval = g_time_zone_find_interval(zone, G_TIME_TYPE_UNIVERSAL, g_get_real_time() / 1_000_000)
        return (g_time_zone_get_offset(zone, interval), g_time_zone_get_abbreviation(zone, interval).map { String(cString: $0) })
    }
}
