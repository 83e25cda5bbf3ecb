// Durations as the seconds summaries and progress lines print.

extension Duration {
    /// The duration in seconds, with its fraction.
    package var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }
}
