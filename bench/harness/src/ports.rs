//! Free loopback ports for the children the harness starts.
//!
//! A port found free by binding port 0 and released for a child to bind can be taken in
//! between: the kernel hands out ports of the same range (`ip_local_port_range`, 32768 to
//! 60999 by default) to every outgoing connection, and while one build is up and under load
//! another is started beside it (compare's headline rounds), its connection pools and the
//! load generator open connections by the hundred. So the ports come from below that range,
//! where the kernel never picks one by itself, starting at a point that differs from process
//! to process, and each is held until all are found, so no two are the same.

use std::net::TcpListener;

/// Lowest port handed out.
const FIRST: u16 = 20_000;
/// One past the highest: the default start of the kernel's ephemeral range.
const END: u16 = 32_768;

/// `n` distinct ports on 127.0.0.1 that were free a moment ago and lie outside the kernel's
/// default ephemeral range.
pub fn free_loopback_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let span = u32::from(END - FIRST);
    let start = rand::random_range(0..span);
    let mut held = Vec::with_capacity(n);
    for offset in 0..span {
        if held.len() == n {
            break;
        }
        let port = FIRST + ((start + offset) % span) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    if held.len() < n {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("only {} of {n} loopback ports free between {FIRST} and {END}", held.len()),
        ));
    }
    held.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports = free_loopback_ports(40).expect("forty free ports");
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 40, "a port handed out twice: {ports:?}");
        assert!(ports.iter().all(|p| (FIRST..END).contains(p)), "{ports:?}");
        // Released: a child can bind each of them.
        for port in ports {
            TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("port {port} not free: {e}"));
        }
    }
}
