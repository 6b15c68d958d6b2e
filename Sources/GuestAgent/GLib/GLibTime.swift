import CGLib
import Glibc

/// GLib's clock and time zones, as qemu-ga reads them.
enum GLibTime {
    /// `g_get_real_time`: microseconds since the Unix epoch.
    static func realTimeMicroseconds() -> Int64 { Int64(g_get_real_time()) }

    /// The local calendar year of a moment (`GDate` from `time_t`), and the
    /// errno the conversion set, if any: qemu-ga appends it to its refusal.
    static func localYear(ofSeconds seconds: Int) -> (year: Int, error: SystemError?) {
        errno = 0
        let date = g_date_new()
        defer { g_date_free(date) }
        g_date_set_time_t(date, seconds)
        let year = Int(g_date_get_year(date))
        let error = SystemError.current
        return (year, error == .none ? nil : error)
    }

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
