use std::rc::Rc;

#[prpc::service]
pub trait Counter {
    async fn get(&self) -> u64;
}

struct Local;

impl Counter for Local {
    async fn get(&self) -> u64 {
        let shared = Rc::new(1);
        tokio::task::yield_now().await;
        *shared
    }
}

fn main() {}
