// «Мониторинг»'s live part — the totals on top and a row per operator — as ONE component that Python
// changes through patch() (a run_method message), never through an element update: NiceGUI redraws the
// whole page from its root for every element update, which on a dashboard pushed a few times a second
// kept the browser busier than anything it shows. patch() replaces only the rows that changed, so Vue
// redraws those rows and nothing else. The time in a state is counted by the browser (STATE_TIMER_JS
// reads data-state-elapsed / data-state-key); v-text keeps Vue writing to the cell itself, not to a text
// node the timer has replaced. A row's actions are plain buttons and the break reasons one menu for the
// whole board, opened at the button clicked: two Quasar buttons and a menu per row were ~300 components
// for Vue to diff whenever rows were replaced.
const OperatorLine = {
  props: { row: Object, grid: String },
  emits: ["day", "menu", "logout"],
  template: `
    <div class="crm-mon-line grid w-full crm-mon-row text-sm items-center border-b" :class="row.level"
         :style="grid" :data-testid="'monitoring-row-' + row.id">
      <a class="truncate cursor-pointer text-primary underline" :data-testid="'monitoring-day-' + row.id"
         title="Контакты за сегодня" @click="$emit('day')" v-text="row.name"></a>
      <div><span class="rounded px-2 text-white" :class="'bg-' + row.color"
                 :data-testid="'monitoring-state-' + row.id" v-text="row.state"></span></div>
      <div class="tabular-nums" :data-state-elapsed="row.elapsed" :data-state-key="row.key" v-text="row.time"></div>
      <a class="truncate text-primary" :href="row.href" :data-testid="'monitoring-borrower-' + row.id"
         v-text="row.borrower"></a>
      <div v-for="(value, i) in row.figures" :key="i" class="tabular-nums" v-text="value"></div>
      <div class="flex gap-1 no-wrap whitespace-nowrap">
        <button type="button" class="crm-mon-action text-orange-9" :data-testid="'monitoring-break-' + row.id"
                @click="$emit('menu', $event.currentTarget)">Перерыв</button>
        <button type="button" class="crm-mon-action text-negative" :data-testid="'monitoring-logout-' + row.id"
                @click="$emit('logout')">Вывести из сети</button>
      </div>
    </div>
  `,
};

export default {
  components: { OperatorLine },
  props: { lines: Array, totals: Array, updated: String, reasons: Array, grid: String, columns: Array },
  emits: ["day", "pause", "logout"],
  data() {
    return {
      shownLines: this.lines || [],
      shownTotals: this.totals || [],
      shownUpdated: this.updated || "",
      menu: { open: false, target: false, row: null },
    };
  },
  watch: {
    lines(value) { this.shownLines = value || []; },
    totals(value) { this.shownTotals = value || []; },
    updated(value) { this.shownUpdated = value || ""; },
  },
  methods: {
    openMenu(row, target) {
      this.menu.open = false;
      this.menu.target = target;
      this.menu.row = row;
      this.$nextTick(() => { this.menu.open = true; });
    },
    patch(delta) {
      if (delta.lines) {
        this.shownLines = delta.lines;
      } else if (delta.rows) {
        const at = new Map(this.shownLines.map((row, i) => [row.id, i]));
        for (const row of delta.rows) {
          const i = at.get(row.id);
          if (i !== undefined) this.shownLines[i] = row;
        }
      }
      if (delta.totals) this.shownTotals = delta.totals;
      if (delta.updated) this.shownUpdated = delta.updated;
    },
  },
  template: `
    <div class="w-full flex flex-col gap-3">
      <div class="text-xs text-gray-500" data-testid="monitoring-updated" v-text="shownUpdated"></div>
      <div class="flex flex-wrap gap-3" data-testid="monitoring-totals">
        <div v-for="card in shownTotals" :key="card[2]" class="bg-white rounded shadow px-3 py-2">
          <div class="text-xs text-gray-500" v-text="card[0]"></div>
          <div class="text-lg font-semibold tabular-nums" :data-testid="card[2]" v-text="card[1]"></div>
        </div>
      </div>
      <div class="w-full bg-white rounded shadow-sm overflow-x-auto">
        <div class="grid w-full crm-mon-row text-xs font-medium text-gray-600 border-b" :style="grid">
          <div v-for="title in columns" v-text="title"></div>
        </div>
        <div v-if="!shownLines.length" class="p-3 text-gray-600">Операторов нет</div>
        <operator-line v-for="row in shownLines" :key="row.id" :row="row" :grid="grid"
                       @day="$emit('day', row.id)" @menu="(target) => openMenu(row.id, target)"
                       @logout="$emit('logout', row.id)"></operator-line>
      </div>
      <q-menu v-model="menu.open" :target="menu.target" no-parent-event>
        <q-list dense>
          <q-item v-for="reason in reasons" :key="reason[0]" clickable v-close-popup
                  :data-testid="'monitoring-break-' + menu.row + '-' + reason[0]"
                  @click="$emit('pause', [menu.row, reason[0]])">
            <q-item-section v-text="reason[1]"></q-item-section>
          </q-item>
        </q-list>
      </q-menu>
    </div>
  `,
};
