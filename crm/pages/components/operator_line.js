// One operator's row of «Мониторинг»: a single element per row, so a dashboard of a hundred operators is
// a hundred small elements, and a push sends only the rows that changed. The time cell is counted by the
// browser (STATE_TIMER_JS reads data-state-elapsed/data-state-key); v-text keeps Vue writing to the
// cell itself, not to a text node the timer has replaced.
export default {
  template: `
    <div>
      <a class="truncate cursor-pointer text-primary underline" :data-testid="'monitoring-day-' + row.id"
         title="Контакты за сегодня" @click="$emit('day')" v-text="row.name"></a>
      <div><span class="rounded px-2 text-white" :class="'bg-' + row.color"
                 :data-testid="'monitoring-state-' + row.id" v-text="row.state"></span></div>
      <div class="tabular-nums" :data-state-elapsed="row.elapsed" :data-state-key="row.key" v-text="row.time"></div>
      <a class="truncate text-primary" :href="row.href" :data-testid="'monitoring-borrower-' + row.id"
         v-text="row.borrower"></a>
      <div v-for="(value, i) in row.figures" :key="i" class="tabular-nums" v-text="value"></div>
      <div class="flex gap-1 no-wrap whitespace-nowrap">
        <q-btn dense flat no-caps color="orange-9" label="Перерыв" :data-testid="'monitoring-break-' + row.id">
          <q-menu>
            <q-list dense>
              <q-item v-for="reason in reasons" :key="reason[0]" clickable v-close-popup
                      :data-testid="'monitoring-break-' + row.id + '-' + reason[0]"
                      @click="$emit('pause', reason[0])">
                <q-item-section v-text="reason[1]"></q-item-section>
              </q-item>
            </q-list>
          </q-menu>
        </q-btn>
        <q-btn dense flat no-caps color="negative" label="Вывести из сети"
               :data-testid="'monitoring-logout-' + row.id" @click="$emit('logout')"></q-btn>
      </div>
    </div>
  `,
  props: {
    row: Object,
    reasons: Array,
  },
};
